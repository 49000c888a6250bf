/**
 * `JournalStorage`: Optuna's storage API over a journal back-end (file or Redis). Every write
 * appends one record and then re-syncs; ids come from replay, never from a stale local view
 * (spec §2.5), so several of our processes and Optuna's own workers can share one journal.
 * @module
 */

import type { Distribution, ParamValue } from "./distributions.ts";
import { distributionToJson, toInternal } from "./distributions.ts";
import {
  type FileBackendOptions,
  type JournalBackend,
  JournalFileBackend,
} from "./file_storage.ts";
import {
  type FrozenStudy,
  type FrozenTrial,
  isFinished,
  JournalReplay,
  OpCode,
  OwnRecordError,
  type StudyDirection,
  TrialState,
} from "./journal.ts";
import { type JsonValue, type PyFloat, pyFloat, pyStringify } from "./pyjson.ts";
import { JournalRedisBackend } from "./redis_storage.ts";

/** `datetime.now().isoformat(timespec="microseconds")`: local naive time, 6 fraction digits. */
export function localIsoNow(date: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.` +
    `${p(date.getMilliseconds(), 3)}000`;
}

/** Parses an Optuna datetime (naive = local time, or with an offset / `Z`) to epoch ms. */
export function parseOptunaDatetime(s: string): number {
  const m =
    /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d\d:?\d\d)?$/.exec(
      s,
    );
  if (!m) throw new RangeError(`invalid datetime ${JSON.stringify(s)}`);
  const [, y, mo, d, h, mi, sec, frac, tz] = m;
  const ms = frac ? Number(frac.padEnd(6, "0")) / 1000 : 0;
  if (tz === undefined) {
    return new Date(+y!, +mo! - 1, +d!, +h!, +mi!, +(sec ?? 0)).getTime() + ms;
  }
  const base = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +(sec ?? 0)) + ms;
  if (tz === "Z") return base;
  const sign = tz[0] === "-" ? -1 : 1;
  const digits = tz.slice(1).replace(":", "");
  return base - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
}

/** Thrown when creating a study whose name is taken. */
export class DuplicatedStudyError extends Error {
  override name = "DuplicatedStudyError";
}

/** How to open a storage. */
export interface OpenStorageOptions extends FileBackendOptions {
  /** Key prefix for a Redis journal (`--journal-prefix`); Optuna's default is "". */
  prefix?: string;
  /** Identifies this writer's records; default `<uuid>-<pid>`. Must be unique per writer. */
  workerId?: string;
  /** Spacing of written records: "compact" (Optuna 4.x) or "default" (3.x). */
  separators?: "compact" | "default";
}

/** A template for {@link JournalStorage.createTrial} (Optuna's `add_trial`/`enqueue_trial`). */
export interface TrialTemplate {
  /** The new trial's state, e.g. WAITING for an enqueued trial. */
  state: TrialState;
  /** Objective values (a COMPLETE trial's); default none. */
  values?: number[] | null;
  /** Start time as an ISO string; default null. */
  datetimeStart?: string | null;
  /** Completion time as an ISO string; default none. */
  datetimeComplete?: string | null;
  /** Parameter values (external form); each needs an entry in `distributions`. */
  params?: Record<string, ParamValue>;
  /** Each parameter's distribution, by name. */
  distributions?: Record<string, Distribution>;
  /** User attributes; default none. */
  userAttrs?: Record<string, JsonValue>;
  /** System attributes; default none. */
  systemAttrs?: Record<string, JsonValue>;
  /** step → reported value; default none. */
  intermediateValues?: Map<number, number>;
}

const floats = (v: number[] | null | undefined): PyFloat[] | null => v ? v.map(pyFloat) : null;

/** Optuna's storage API over a journal. Methods are serialised per instance. */
export class JournalStorage {
  /**
   * The journal's studies and trials as replayed up to the last read (see {@link sync}).
   * @internal
   */
  readonly replay: JournalReplay;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #separators: "compact" | "default";

  /** Wraps a back-end; prefer {@link openJournalStorage}. Call {@link sync} before reading. */
  constructor(readonly backend: JournalBackend, opts: OpenStorageOptions = {}) {
    this.replay = new JournalReplay(opts.workerId ?? `${crypto.randomUUID()}-${Deno.pid}`);
    this.#separators = opts.separators ?? "compact";
  }

  /** This writer's worker_id. */
  get workerId(): string {
    return this.replay.workerId;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => {});
    return p;
  }

  async #syncNow(): Promise<void> {
    this.replay.applyAll(await this.backend.readRecords());
  }

  /** Reads and replays whatever other writers appended. */
  sync(): Promise<void> {
    return this.#serial(() => this.#syncNow());
  }

  /** Appends one record, re-syncs, and throws if replay refused it. */
  async #write(op: number, fields: Record<string, JsonValue>): Promise<void> {
    const record = { op_code: op, worker_id: this.workerId, ...fields };
    await this.backend.appendLines([pyStringify(record, this.#separators)]);
    const before = this.replay.ownErrors.length;
    await this.#syncNow();
    const err = this.replay.ownErrors[before];
    this.replay.ownErrors.length = 0;
    if (err) throw err;
  }

  /** Creates a study; throws {@link DuplicatedStudyError} if the name is taken. */
  createStudy(name: string, directions: StudyDirection[]): Promise<number> {
    return this.#serial(async () => {
      try {
        await this.#write(OpCode.CREATE_STUDY, { study_name: name, directions });
      } catch (e) {
        if (e instanceof OwnRecordError && e.reason === "duplicate-study") {
          throw new DuplicatedStudyError(
            `study ${JSON.stringify(name)} already exists in ${this.backend.description}`,
          );
        }
        throw e;
      }
      return this.replay.studyByName(name)!.studyId;
    });
  }

  /** The id of an existing study, or of a new one (`load_if_exists=True`). */
  getOrCreateStudy(name: string, directions: StudyDirection[]): Promise<number> {
    return this.#serial(async () => {
      await this.#syncNow();
      let s = this.replay.studyByName(name);
      if (!s) {
        // Another writer may create it first; then our record is refused and theirs wins.
        await this.#write(OpCode.CREATE_STUDY, { study_name: name, directions }).catch((e) => {
          if (!(e instanceof OwnRecordError && e.reason === "duplicate-study")) throw e;
        });
        s = this.replay.studyByName(name)!;
      }
      const same = s.directions.length === directions.length &&
        s.directions.every((d, i) => d === directions[i]);
      if (!same) {
        throw new RangeError(
          `study ${JSON.stringify(name)} has directions ${
            JSON.stringify(s.directions)
          }, asked for ${JSON.stringify(directions)}`,
        );
      }
      return s.studyId;
    });
  }

  /** Deletes a study (its trials keep their ids). */
  deleteStudy(studyId: number): Promise<void> {
    return this.#serial(() => this.#write(OpCode.DELETE_STUDY, { study_id: studyId }));
  }

  /** Sets a study user attribute. */
  setStudyUserAttr(studyId: number, key: string, value: JsonValue): Promise<void> {
    return this.#serial(() =>
      this.#write(OpCode.SET_STUDY_USER_ATTR, { study_id: studyId, user_attr: { [key]: value } })
    );
  }

  /** Sets a study system attribute. */
  setStudySystemAttr(studyId: number, key: string, value: JsonValue): Promise<void> {
    return this.#serial(() =>
      this.#write(OpCode.SET_STUDY_SYSTEM_ATTR, {
        study_id: studyId,
        system_attr: { [key]: value },
      })
    );
  }

  /** Creates a trial (plain RUNNING, or from a template) and returns its global trial id. */
  createTrial(studyId: number, template?: TrialTemplate): Promise<number> {
    return this.#serial(async () => {
      const fields: Record<string, JsonValue> = {
        study_id: studyId,
        datetime_start: localIsoNow(),
      };
      if (template) {
        const values = template.values ?? null;
        fields.state = template.state;
        fields.value = values && values.length === 1 ? pyFloat(values[0]!) : null;
        fields.values = values && values.length > 1 ? floats(values) : null;
        fields.datetime_start = template.datetimeStart ?? null;
        if (template.datetimeComplete) fields.datetime_complete = template.datetimeComplete;
        const dists = template.distributions ?? {};
        fields.distributions = Object.fromEntries(
          Object.entries(dists).map(([k, d]) => [k, distributionToJson(d)]),
        );
        fields.params = Object.fromEntries(
          Object.entries(template.params ?? {}).map(([k, v]) => {
            const d = dists[k];
            if (!d) throw new RangeError(`template param "${k}" has no distribution`);
            return [k, internalJson(d, toInternal(d, v))];
          }),
        );
        fields.user_attrs = template.userAttrs ?? {};
        fields.system_attrs = template.systemAttrs ?? {};
        fields.intermediate_values = Object.fromEntries(
          [...(template.intermediateValues ?? new Map<number, number>())].map((
            [k, v],
          ) => [String(k), pyFloat(v)]),
        );
      }
      await this.#write(OpCode.CREATE_TRIAL, fields);
      return this.replay.lastCreatedTrialId;
    });
  }

  /** Records a parameter (internal value) with its distribution. */
  setTrialParam(
    trialId: number,
    name: string,
    internal: number,
    dist: Distribution,
  ): Promise<void> {
    return this.#serial(() =>
      this.#write(OpCode.SET_TRIAL_PARAM, {
        trial_id: trialId,
        param_name: name,
        param_value_internal: internalJson(dist, internal),
        distribution: distributionToJson(dist),
      })
    );
  }

  /**
   * Sets state and values. For RUNNING (claiming a WAITING trial) returns whether this writer
   * won the claim; otherwise true.
   */
  setTrialStateValues(
    trialId: number,
    state: TrialState,
    values: number[] | null = null,
  ): Promise<boolean> {
    return this.#serial(async () => {
      const fields: Record<string, JsonValue> = {
        trial_id: trialId,
        state,
        values: floats(values),
      };
      if (state === TrialState.RUNNING) fields.datetime_start = localIsoNow();
      else if (isFinished(state)) fields.datetime_complete = localIsoNow();
      await this.#write(OpCode.SET_TRIAL_STATE_VALUES, fields);
      return state !== TrialState.RUNNING || this.replay.ownedTrialId() === trialId;
    });
  }

  /** Records an intermediate value at `step`. */
  setTrialIntermediateValue(trialId: number, step: number, value: number): Promise<void> {
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`step must be an integer >= 0, got ${step}`);
    }
    return this.#serial(() =>
      this.#write(OpCode.SET_TRIAL_INTERMEDIATE_VALUE, {
        trial_id: trialId,
        step,
        intermediate_value: pyFloat(value),
      })
    );
  }

  /** Sets a trial user attribute. */
  setTrialUserAttr(trialId: number, key: string, value: JsonValue): Promise<void> {
    return this.#serial(() =>
      this.#write(OpCode.SET_TRIAL_USER_ATTR, { trial_id: trialId, user_attr: { [key]: value } })
    );
  }

  /** Sets a trial system attribute. */
  setTrialSystemAttr(trialId: number, key: string, value: JsonValue): Promise<void> {
    return this.#serial(() =>
      this.#write(OpCode.SET_TRIAL_SYSTEM_ATTR, {
        trial_id: trialId,
        system_attr: { [key]: value },
      })
    );
  }

  /** Live studies in id order (after a sync). */
  async getAllStudies(): Promise<FrozenStudy[]> {
    await this.sync();
    return [...this.replay.studies.values()];
  }

  /** A study's trials in number order, optionally filtered by state (after a sync). */
  async getAllTrials(studyId: number, states?: readonly TrialState[]): Promise<FrozenTrial[]> {
    await this.sync();
    if (!this.replay.studies.has(studyId)) throw new RangeError(`study ${studyId} does not exist`);
    const all = this.replay.studyTrialList(studyId);
    return states ? all.filter((t) => states.includes(t.state)) : all;
  }

  /** One trial by global id (after a sync). */
  async getTrial(trialId: number): Promise<FrozenTrial> {
    await this.sync();
    const t = this.replay.trials[trialId];
    if (!t) throw new RangeError(`trial id ${trialId} does not exist`);
    return t;
  }

  /** Closes the back-end. */
  close(): Promise<void> {
    return this.#serial(() => this.backend.close());
  }
}

/** A param's internal value as Optuna writes it: a float for Float and Int, an int index for Categorical. */
function internalJson(d: Distribution, internal: number): JsonValue {
  return d.kind === "categorical" ? internal : pyFloat(internal);
}

/**
 * Opens a journal: `redis://host:port/db` (with `opts.prefix`) or a file path. The returned
 * storage has already replayed everything in it.
 */
export async function openJournalStorage(
  target: string,
  opts: OpenStorageOptions = {},
): Promise<JournalStorage> {
  const backend = target.startsWith("redis://")
    ? await JournalRedisBackend.open(target, opts.prefix ?? "")
    : await JournalFileBackend.open(target, opts);
  const storage = new JournalStorage(backend, opts);
  try {
    await storage.sync();
  } catch (e) {
    await backend.close();
    throw e;
  }
  return storage;
}
