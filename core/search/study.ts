/**
 * The driver's view of a search: get or create a study by name, `ask` a trial (the sampler
 * proposes every parameter of a search space), `report` per-epoch values and ask the pruner,
 * `tell` the outcome. The journal records exactly what Optuna's ask/tell would, so Optuna can
 * load, analyse and continue our studies, and we theirs.
 *
 * Dead workers: every trial we run carries the system attr `webgpu_trainer:heartbeat`
 * (host, pid, the pid's start time, epoch ms), refreshed on `report` at most every
 * `heartbeatEveryMs`, by `heartbeat()`, and by a `startHeartbeat()` timer. {@link Study.failStaleTrials} marks RUNNING trials
 * FAIL when (same host) their process no longer exists, or (other hosts) their heartbeat is
 * older than `staleAfterMs`; trials without the attr (Optuna's own workers) only when
 * `foreignStaleAfterMs` is given and their start is older than that.
 * @module
 */

import { type Distribution, isSingle, type ParamValue, toInternal } from "./distributions.ts";
import {
  type FrozenTrial,
  isFinished,
  OwnRecordError,
  StudyDirection,
  TrialState,
} from "./journal.ts";
import type { JsonValue } from "./pyjson.ts";
import { MedianPruner, type Pruner } from "./pruners/median.ts";
import type { Direction, Sampler, SearchContext } from "./samplers/sampler.ts";
import { TpeSampler } from "./samplers/tpe.ts";
import { parseSearchSpace, type SearchSpace } from "./space.ts";
import { type JournalStorage, parseOptunaDatetime } from "./storage.ts";
import { currentProcess, processAlive } from "./process.ts";

/** The system attr carrying a trial's liveness. */
export const HEARTBEAT_ATTR = "webgpu_trainer:heartbeat";

/** Thrown when a trial was finished elsewhere (e.g. failed as stale) while we ran it. */
export class TrialFinishedError extends Error {
  override name = "TrialFinishedError";
}

/** How a trial ended. */
export type TrialOutcome =
  | { state: "complete"; value: number }
  | { state: "pruned" }
  | { state: "fail" };

/** Options of {@link Study.open}. */
export interface StudyOptions {
  /** The study's name: an existing study of that name is opened, else one is created. */
  name: string;
  /** Whether the objective is minimised or maximised. */
  direction: Direction;
  /** Default: `new TpeSampler()` (Optuna's default, unseeded). */
  sampler?: Sampler;
  /** Default: `new MedianPruner()` (Optuna's default); null never prunes. */
  pruner?: Pruner | null;
  /** Minimum time between heartbeat records written by `report` (default 5000 ms). */
  heartbeatEveryMs?: number;
}

/** Options of {@link Study.failStaleTrials}. */
export interface StaleOptions {
  /** Heartbeat age after which a trial of another host is dead (default 10 minutes). */
  staleAfterMs?: number;
  /** Also fail trials without our heartbeat (Optuna's workers) started this long ago. */
  foreignStaleAfterMs?: number | null;
  /** "Now" in epoch ms (tests). */
  now?: number;
}

/** A study in a journal. */
export class Study {
  /** Set when the sampler has nothing left to try (grid exhausted). */
  stopRequested = false;

  private constructor(
    readonly storage: JournalStorage,
    readonly studyId: number,
    readonly name: string,
    readonly direction: Direction,
    readonly sampler: Sampler,
    readonly pruner: Pruner | null,
    readonly heartbeatEveryMs: number,
  ) {}

  /** Loads the study `opts.name`, creating it if absent; its direction must match. */
  static async open(storage: JournalStorage, opts: StudyOptions): Promise<Study> {
    const dir = opts.direction === "minimize" ? StudyDirection.MINIMIZE : StudyDirection.MAXIMIZE;
    if (opts.direction !== "minimize" && opts.direction !== "maximize") {
      throw new RangeError(
        `direction must be "minimize" or "maximize", got ${JSON.stringify(opts.direction)}`,
      );
    }
    const id = await storage.getOrCreateStudy(opts.name, [dir]);
    return new Study(
      storage,
      id,
      opts.name,
      opts.direction,
      opts.sampler ?? new TpeSampler(),
      opts.pruner === undefined ? new MedianPruner() : opts.pruner,
      opts.heartbeatEveryMs ?? 5000,
    );
  }

  /** All trials in number order (after a sync). */
  trials(): Promise<FrozenTrial[]> {
    return this.storage.getAllTrials(this.studyId);
  }

  /** The best COMPLETE trial, or null. */
  async bestTrial(): Promise<FrozenTrial | null> {
    let best: FrozenTrial | null = null;
    for (const t of await this.trials()) {
      if (t.state !== TrialState.COMPLETE || !t.values) continue;
      const v = t.values[0]!;
      const b = best === null ? undefined : best.values![0];
      if (b === undefined || (this.direction === "minimize" ? v < b : v > b)) best = t;
    }
    return best;
  }

  #context(trial: FrozenTrial): SearchContext {
    return {
      trials: this.storage.replay.studyTrialList(this.studyId),
      direction: this.direction,
      trial,
    };
  }

  /** Adds a WAITING trial whose parameters are fixed (Optuna's `enqueue_trial`). */
  async enqueue(params: Record<string, JsonValue>): Promise<number> {
    return await this.storage.createTrial(this.studyId, {
      state: TrialState.WAITING,
      systemAttrs: { fixed_params: params },
    });
  }

  /** Starts a trial (an enqueued one first) and samples every parameter of `space`. */
  async ask(space: SearchSpace | unknown): Promise<Trial> {
    const ss = isSearchSpace(space) ? space : parseSearchSpace(space);
    const st = this.storage;
    await st.sync();
    let trialId = -1;
    for (const t of st.replay.studyTrialList(this.studyId)) {
      if (t.state !== TrialState.WAITING) continue;
      try {
        if (await st.setTrialStateValues(t.trialId, TrialState.RUNNING)) {
          trialId = t.trialId;
          break;
        }
      } catch (e) {
        if (!(e instanceof OwnRecordError)) throw e; // someone finished it meanwhile
      }
    }
    if (trialId < 0) trialId = await st.createTrial(this.studyId);
    const trial = st.replay.trials[trialId]!;
    for (const [k, v] of this.sampler.beforeTrial?.(this.#context(trial)) ?? []) {
      await st.setTrialSystemAttr(trialId, k, v);
    }
    const handle = new Trial(this, trial);
    await handle.heartbeat();
    // Depth-first: a categorical's chosen branch is suggested right after it.
    const queue = [...ss.params];
    while (queue.length > 0) {
      const { name, distribution, branches } = queue.shift()!;
      if (!(name in trial.params)) {
        const value = this.#suggest(trial, name, distribution);
        await st.setTrialParam(trialId, name, toInternal(distribution, value), distribution);
      }
      const sub = branches?.get(String(trial.params[name]));
      if (sub) queue.unshift(...sub);
    }
    return handle;
  }

  #suggest(trial: FrozenTrial, name: string, d: Distribution): ParamValue {
    const fixed = trial.systemAttrs.fixed_params;
    if (fixed && typeof fixed === "object" && !Array.isArray(fixed) && name in fixed) {
      return (fixed as Record<string, ParamValue>)[name]!;
    }
    if (isSingle(d)) return d.kind === "categorical" ? d.choices[0]! : d.low;
    return this.sampler.sampleIndependent(this.#context(trial), name, d);
  }

  /**
   * Finishes a trial. COMPLETE needs a value (NaN makes it FAIL, as in Optuna); PRUNED stores
   * the last intermediate value. If the trial was already finished elsewhere (failed as
   * stale), nothing is written and that state is returned.
   */
  async tell(trial: Trial, outcome: TrialOutcome): Promise<FrozenTrial> {
    trial.stopHeartbeat();
    const st = this.storage;
    await st.sync();
    const t = st.replay.trials[trial.trialId]!;
    if (isFinished(t.state)) return t;
    let state: TrialState = TrialState.FAIL;
    let values: number[] | null = null;
    if (outcome.state === "complete" && !Number.isNaN(outcome.value)) {
      state = TrialState.COMPLETE;
      values = [outcome.value];
    } else if (outcome.state === "pruned") {
      state = TrialState.PRUNED;
      if (t.intermediateValues.size > 0) {
        const last = t.intermediateValues.get(Math.max(...t.intermediateValues.keys()))!;
        if (!Number.isNaN(last)) values = [last];
      }
    }
    // Optuna calls after_trial before writing the state; the grid sampler relies on it.
    if (this.sampler.afterTrial?.(this.#context(t))) this.stopRequested = true;
    try {
      await st.setTrialStateValues(t.trialId, state, values);
    } catch (e) {
      if (!(e instanceof OwnRecordError && e.reason === "finished-trial")) throw e;
    }
    return t;
  }

  /** Marks dead workers' RUNNING trials FAIL (see the module doc); returns their numbers. */
  async failStaleTrials(opts: StaleOptions = {}): Promise<number[]> {
    const now = opts.now ?? Date.now();
    const staleAfter = opts.staleAfterMs ?? 600_000;
    const me = currentProcess();
    const failed: number[] = [];
    for (const t of await this.trials()) {
      if (t.state !== TrialState.RUNNING) continue;
      const hb = t.systemAttrs[HEARTBEAT_ATTR] as Record<string, JsonValue> | undefined;
      let stale = false;
      if (hb && typeof hb === "object") {
        const alive = hb.host === me.host
          ? processAlive(Number(hb.pid), Number(hb.pid_start))
          : null;
        stale = alive === null ? now - Number(hb.time) > staleAfter : !alive;
      } else if (opts.foreignStaleAfterMs != null && t.datetimeStart) {
        stale = now - parseOptunaDatetime(t.datetimeStart) > opts.foreignStaleAfterMs;
      }
      if (!stale) continue;
      try {
        await this.storage.setTrialStateValues(t.trialId, TrialState.FAIL, null);
        if (this.storage.replay.trials[t.trialId]!.state === TrialState.FAIL) failed.push(t.number);
      } catch (e) {
        if (!(e instanceof OwnRecordError)) throw e; // finished meanwhile
      }
    }
    return failed;
  }
}

function isSearchSpace(x: unknown): x is SearchSpace {
  return typeof x === "object" && x !== null && Array.isArray((x as SearchSpace).params);
}

/** A running trial, as the driver holds it. */
export class Trial {
  #lastBeat = -Infinity;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Wraps a replayed trial; made by {@link Study.ask}. */
  constructor(readonly study: Study, readonly frozen: FrozenTrial) {}

  /** Global trial id in the journal. */
  get trialId(): number {
    return this.frozen.trialId;
  }

  /** Trial number within the study (name run directories after it). */
  get number(): number {
    return this.frozen.number;
  }

  /** Sampled parameters, external values. */
  get params(): Record<string, ParamValue> {
    return this.frozen.params;
  }

  /** Distributions of the sampled parameters. */
  get distributions(): Record<string, Distribution> {
    return this.frozen.distributions;
  }

  /** Records the validation metric of `step` (an epoch); a repeated step is ignored, as in Optuna. */
  async report(value: number, step: number): Promise<void> {
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`report step must be an integer >= 0, got ${step}`);
    }
    if (typeof value !== "number") {
      throw new TypeError(`report value must be a number, got ${JSON.stringify(value)}`);
    }
    if (this.frozen.intermediateValues.has(step)) return;
    await this.#guard(() =>
      this.study.storage.setTrialIntermediateValue(this.trialId, step, value)
    );
    if (performance.now() - this.#lastBeat >= this.study.heartbeatEveryMs) await this.heartbeat();
  }

  /** Whether the pruner says to stop now (after syncing with other workers). */
  async shouldPrune(): Promise<boolean> {
    if (!this.study.pruner) return false;
    await this.study.storage.sync();
    return this.study.pruner.prune({
      trials: this.study.storage.replay.studyTrialList(this.study.studyId),
      direction: this.study.direction,
      trial: this.frozen,
    });
  }

  /** Records that this trial's worker is alive. */
  async heartbeat(): Promise<void> {
    const p = currentProcess();
    this.#lastBeat = performance.now();
    await this.#guard(() =>
      this.study.storage.setTrialSystemAttr(this.trialId, HEARTBEAT_ATTR, {
        host: p.host,
        pid: p.pid,
        pid_start: p.pidStart,
        time: Date.now(),
        worker_id: this.study.storage.workerId,
      })
    );
  }

  /**
   * Writes a heartbeat every `everyMs` in the background until the trial is told (or
   * {@link stopHeartbeat}), so that epochs longer than `staleAfterMs` are not taken for a dead
   * worker. A failed write (e.g. the trial was failed elsewhere) stops the timer.
   */
  startHeartbeat(everyMs = 60_000): void {
    this.stopHeartbeat();
    this.#timer = setInterval(() => {
      this.heartbeat().catch(() => this.stopHeartbeat());
    }, everyMs);
  }

  /** Stops the background heartbeat. */
  stopHeartbeat(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Sets a user attribute (e.g. the run directory). */
  setUserAttr(key: string, value: JsonValue): Promise<void> {
    return this.#guard(() => this.study.storage.setTrialUserAttr(this.trialId, key, value));
  }

  async #guard(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (e) {
      if (e instanceof OwnRecordError && e.reason === "finished-trial") {
        throw new TrialFinishedError(
          `trial ${this.number} of study "${this.study.name}" was finished elsewhere (state ${this.frozen.state})`,
        );
      }
      throw e;
    }
  }
}
