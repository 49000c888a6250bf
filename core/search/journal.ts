/**
 * The journal's operations and their replay (spec §1.3–§1.5, §2.2): a pure state machine that
 * rebuilds studies and trials from records exactly as Optuna's `JournalStorageReplayResult`
 * does — study ids never reused, global trial ids, per-study trial numbers, foreign invalid
 * records skipped, own invalid records reported to the writer.
 * @module
 */

import {
  type Distribution,
  distributionFromJson,
  incompatibility,
  type ParamValue,
  toExternal,
  toInternal,
} from "./distributions.ts";
import type { JsonValue } from "./pyjson.ts";

/** Operation codes (`op_code`). */
export const OpCode = {
  CREATE_STUDY: 0,
  DELETE_STUDY: 1,
  SET_STUDY_USER_ATTR: 2,
  SET_STUDY_SYSTEM_ATTR: 3,
  CREATE_TRIAL: 4,
  SET_TRIAL_PARAM: 5,
  SET_TRIAL_STATE_VALUES: 6,
  SET_TRIAL_INTERMEDIATE_VALUE: 7,
  SET_TRIAL_USER_ATTR: 8,
  SET_TRIAL_SYSTEM_ATTR: 9,
} as const;

/** Trial states as written in the journal. */
export const TrialState = { RUNNING: 0, COMPLETE: 1, PRUNED: 2, FAIL: 3, WAITING: 4 } as const;
/** One of {@link TrialState}'s values. */
export type TrialState = (typeof TrialState)[keyof typeof TrialState];

/** Study directions as written in `directions`. */
export const StudyDirection = { NOT_SET: 0, MINIMIZE: 1, MAXIMIZE: 2 } as const;
/** One of {@link StudyDirection}'s values. */
export type StudyDirection = (typeof StudyDirection)[keyof typeof StudyDirection];

/** Whether a state is final (COMPLETE, PRUNED or FAIL). */
export function isFinished(state: TrialState): boolean {
  return state === TrialState.COMPLETE || state === TrialState.PRUNED || state === TrialState.FAIL;
}

/** One parsed journal line. */
export type JournalRecord = { [key: string]: JsonValue };

/** A study as replay leaves it. Read-only for callers. */
export interface FrozenStudy {
  /** The study's id (0-based, never reused after a delete). */
  readonly studyId: number;
  /** The study's name, unique among live studies. */
  readonly name: string;
  /** One direction per objective. */
  readonly directions: StudyDirection[];
  /** User attributes (`study.user_attrs`). */
  readonly userAttrs: Record<string, JsonValue>;
  /** System attributes (`study.system_attrs`). */
  readonly systemAttrs: Record<string, JsonValue>;
}

/** A trial as replay leaves it. Read-only for callers (replay updates it in place). */
export interface FrozenTrial {
  /** Global trial id: its index among all trials of the journal, 0-based. */
  readonly trialId: number;
  /** The trial's number within its study, 0-based. */
  readonly number: number;
  /** The study it belongs to. */
  readonly studyId: number;
  /** Current state; RUNNING when a CREATE_TRIAL record names none. */
  state: TrialState;
  /** Objective values; a single-objective value is `values[0]`. */
  values: number[] | null;
  /** Raw ISO strings as written (local naive time for Optuna ≤ 4.9). */
  datetimeStart: string | null;
  /** Raw ISO string of when it finished, as written; null until then. */
  datetimeComplete: string | null;
  /** External values, as `trial.params` in Optuna. */
  params: Record<string, ParamValue>;
  /** Each param's distribution, by param name. */
  distributions: Record<string, Distribution>;
  /** User attributes (`trial.user_attrs`). */
  userAttrs: Record<string, JsonValue>;
  /** System attributes (`trial.system_attrs`). */
  systemAttrs: Record<string, JsonValue>;
  /** step → value. */
  intermediateValues: Map<number, number>;
}

/** A fatal problem in the journal itself (Optuna raises and cannot open such a file either). */
export class JournalFormatError extends Error {
  override name = "JournalFormatError";
}

/** An own record that replay refused (Optuna raises these in the writing process). */
export class OwnRecordError extends Error {
  override name = "OwnRecordError";
  /** Why: "duplicate-study", "unknown-study", "unknown-trial", "finished-trial", "incompatible". */
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

function req(r: JournalRecord, key: string): JsonValue {
  if (!(key in r)) {
    throw new JournalFormatError(
      `journal record op_code=${r.op_code} lacks "${key}": ${JSON.stringify(r)}`,
    );
  }
  return r[key]!;
}

function reqInt(r: JournalRecord, key: string): number {
  const v = req(r, key);
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new JournalFormatError(
      `journal record "${key}" must be an integer, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function state(v: JsonValue): TrialState {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 4) {
    throw new JournalFormatError(`invalid trial state ${JSON.stringify(v)}`);
  }
  return v as TrialState;
}

function singleAttr(r: JournalRecord, key: string): [string, JsonValue] {
  const o = req(r, key);
  if (o === null || typeof o !== "object" || Array.isArray(o) || Object.keys(o).length !== 1) {
    throw new JournalFormatError(
      `journal record "${key}" must be an object with one key, got ${JSON.stringify(o)}`,
    );
  }
  return Object.entries(o as Record<string, JsonValue>)[0]!;
}

function numbers(v: JsonValue, what: string): number[] | null {
  if (v === null) return null;
  if (!Array.isArray(v)) {
    throw new JournalFormatError(`${what} must be a list or null, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** Replays journal records into studies and trials. */
export class JournalReplay {
  /** Live studies by id, in creation order. */
  readonly studies: Map<number, FrozenStudy> = new Map();
  /** All trials ever created, indexed by global trial id. */
  readonly trials: FrozenTrial[] = [];
  /** study id → trial ids in number order (kept for deleted studies too). */
  readonly studyTrials: Map<number, number[]> = new Map();
  /** How many records have been applied. */
  recordsApplied = 0;
  /** The trial id of this worker's latest CREATE_TRIAL, or -1. */
  lastCreatedTrialId = -1;
  /** Refusals of records this worker wrote, oldest first; the writer takes them. */
  readonly ownErrors: OwnRecordError[] = [];
  #nextStudyId = 0;
  readonly #owned = new Map<string, number>();

  /** `workerId` identifies "own" records; a pure reader passes "". */
  constructor(readonly workerId: string) {}

  /** The trial that `worker` last took into RUNNING (created or claimed), if any. */
  ownedTrialId(worker = this.workerId): number | undefined {
    return this.#owned.get(worker);
  }

  /** The live study with this name. */
  studyByName(name: string): FrozenStudy | undefined {
    for (const s of this.studies.values()) if (s.name === name) return s;
    return undefined;
  }

  /** A study's trials in number order. */
  studyTrialList(studyId: number): FrozenTrial[] {
    return (this.studyTrials.get(studyId) ?? []).map((id) => this.trials[id]!);
  }

  /** Applies records in order. */
  applyAll(records: Iterable<JournalRecord>): void {
    for (const r of records) this.apply(r);
  }

  /** Applies one record. Throws {@link JournalFormatError} on what Optuna treats as fatal. */
  apply(r: JournalRecord): void {
    this.recordsApplied++;
    const own = this.workerId !== "" && r.worker_id === this.workerId;
    const refuse = (reason: string, message: string) => {
      if (own) this.ownErrors.push(new OwnRecordError(reason, message));
    };
    switch (r.op_code) {
      case OpCode.CREATE_STUDY: {
        const name = req(r, "study_name");
        const dirs = req(r, "directions");
        if (typeof name !== "string") {
          throw new JournalFormatError(`study_name must be a string: ${JSON.stringify(r)}`);
        }
        if (!Array.isArray(dirs) || dirs.some((d) => d !== 0 && d !== 1 && d !== 2)) {
          throw new JournalFormatError(`invalid directions ${JSON.stringify(dirs)}`);
        }
        if (this.studyByName(name)) {
          return refuse("duplicate-study", `Another study with name "${name}" already exists`);
        }
        const studyId = this.#nextStudyId++;
        this.studies.set(studyId, {
          studyId,
          name,
          directions: dirs as StudyDirection[],
          userAttrs: {},
          systemAttrs: {},
        });
        this.studyTrials.set(studyId, []);
        return;
      }
      case OpCode.DELETE_STUDY: {
        const id = reqInt(r, "study_id");
        if (!this.studies.delete(id)) refuse("unknown-study", `study ${id} does not exist`);
        return;
      }
      case OpCode.SET_STUDY_USER_ATTR:
      case OpCode.SET_STUDY_SYSTEM_ATTR: {
        const id = reqInt(r, "study_id");
        const user = r.op_code === OpCode.SET_STUDY_USER_ATTR;
        const s = this.studies.get(id);
        if (!s) return refuse("unknown-study", `study ${id} does not exist`);
        const [k, v] = singleAttr(r, user ? "user_attr" : "system_attr");
        (user ? s.userAttrs : s.systemAttrs)[k] = v;
        return;
      }
      case OpCode.CREATE_TRIAL:
        return this.#createTrial(r, own, refuse);
      case OpCode.SET_TRIAL_PARAM:
        return this.#setParam(r, refuse);
      case OpCode.SET_TRIAL_STATE_VALUES: {
        const t = this.#updatable(r, refuse);
        if (!t) return;
        const st = state(req(r, "state"));
        // A second RUNNING transition loses the race for a WAITING trial; Optuna skips it
        // silently and the writer learns it from ownedTrialId().
        if (st === TrialState.RUNNING && t.state === TrialState.RUNNING) return;
        const values = numbers(req(r, "values"), "values");
        if (st === TrialState.RUNNING) {
          t.datetimeStart = req(r, "datetime_start") as string;
          this.#owned.set(String(r.worker_id), t.trialId);
        }
        if (isFinished(st)) t.datetimeComplete = req(r, "datetime_complete") as string;
        t.state = st;
        if (values !== null) t.values = values;
        return;
      }
      case OpCode.SET_TRIAL_INTERMEDIATE_VALUE: {
        const t = this.#updatable(r, refuse);
        if (!t) return;
        const step = reqInt(r, "step");
        const v = req(r, "intermediate_value");
        if (typeof v !== "number") {
          throw new JournalFormatError(`intermediate_value must be a number: ${JSON.stringify(r)}`);
        }
        t.intermediateValues.set(step, v);
        return;
      }
      case OpCode.SET_TRIAL_USER_ATTR:
      case OpCode.SET_TRIAL_SYSTEM_ATTR: {
        const user = r.op_code === OpCode.SET_TRIAL_USER_ATTR;
        const t = this.#updatable(r, refuse);
        if (!t) return;
        const [k, v] = singleAttr(r, user ? "user_attr" : "system_attr");
        (user ? t.userAttrs : t.systemAttrs)[k] = v;
        return;
      }
      default:
        throw new JournalFormatError(
          `unknown op_code ${JSON.stringify(r.op_code)} in ${JSON.stringify(r)}`,
        );
    }
  }

  #createTrial(r: JournalRecord, own: boolean, refuse: (a: string, b: string) => void): void {
    const studyId = reqInt(r, "study_id");
    if (!this.studies.has(studyId)) {
      return refuse("unknown-study", `study ${studyId} does not exist`);
    }
    const start = req(r, "datetime_start");
    const distributions: Record<string, Distribution> = {};
    const dists = (r.distributions ?? {}) as Record<string, JsonValue>;
    for (const [k, v] of Object.entries(dists)) {
      if (typeof v !== "string") {
        throw new JournalFormatError(`distribution of "${k}" must be a JSON string`);
      }
      distributions[k] = distributionFromJson(v);
    }
    const params: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries((r.params ?? {}) as Record<string, JsonValue>)) {
      const d = distributions[k];
      if (!d) {
        throw new JournalFormatError(`param "${k}" has no distribution in ${JSON.stringify(r)}`);
      }
      params[k] = toExternal(d, v as number);
    }
    if (r.value !== undefined && r.value !== null && r.values !== undefined && r.values !== null) {
      throw new JournalFormatError("Specify only one of value and values");
    }
    const values = r.value !== undefined && r.value !== null
      ? [r.value as number]
      : numbers(r.values ?? null, "values");
    const ivs = new Map<number, number>();
    for (
      const [k, v] of Object.entries((r.intermediate_values ?? {}) as Record<string, JsonValue>)
    ) {
      ivs.set(Math.trunc(Number(k)), v as number);
    }
    const ids = this.studyTrials.get(studyId)!;
    const t: FrozenTrial = {
      trialId: this.trials.length,
      number: ids.length,
      studyId,
      state: "state" in r ? state(r.state!) : TrialState.RUNNING,
      values,
      datetimeStart: start as string | null,
      datetimeComplete: "datetime_complete" in r ? (r.datetime_complete as string) : null,
      params,
      distributions,
      userAttrs: { ...((r.user_attrs ?? {}) as Record<string, JsonValue>) },
      systemAttrs: { ...((r.system_attrs ?? {}) as Record<string, JsonValue>) },
      intermediateValues: ivs,
    };
    this.trials.push(t);
    ids.push(t.trialId);
    if (own) {
      this.lastCreatedTrialId = t.trialId;
      if (t.state === TrialState.RUNNING) this.#owned.set(this.workerId, t.trialId);
    }
  }

  #updatable(r: JournalRecord, refuse: (a: string, b: string) => void): FrozenTrial | undefined {
    const id = reqInt(r, "trial_id");
    const t = this.trials[id];
    if (!t) return refuse("unknown-trial", `trial id ${id} does not exist`), undefined;
    if (isFinished(t.state)) {
      return refuse(
        "finished-trial",
        `Trial#${t.number} has already finished and can not be updated.`,
      ),
        undefined;
    }
    return t;
  }

  #setParam(r: JournalRecord, refuse: (a: string, b: string) => void): void {
    const t = this.#updatable(r, refuse);
    if (!t) return;
    const name = req(r, "param_name") as string;
    const internal = req(r, "param_value_internal") as number;
    const text = req(r, "distribution");
    if (typeof text !== "string") {
      throw new JournalFormatError(
        `distribution must be a JSON string, got ${JSON.stringify(text)}`,
      );
    }
    const dist = distributionFromJson(text);
    for (const id of this.studyTrials.get(t.studyId)!) {
      const prev = this.trials[id]!;
      if (!(name in prev.params)) continue;
      const why = incompatibility(prev.distributions[name]!, dist);
      if (why !== null) return refuse("incompatible", `parameter "${name}": ${why}`);
      break;
    }
    t.params[name] = toExternal(dist, internal);
    t.distributions[name] = dist;
  }
}

/** Optuna's internal value of a trial's parameter (`dist.to_internal_repr(params[name])`). */
export function internalParam(t: FrozenTrial, name: string): number | undefined {
  const d = t.distributions[name];
  return d === undefined ? undefined : toInternal(d, t.params[name]!);
}
