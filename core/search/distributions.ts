/**
 * Optuna's parameter distributions (spec §1.6): Float, Int and Categorical, their serialised
 * JSON strings (including the legacy and abbreviated forms Optuna reads), the internal
 * representation stored in the journal, `high` adjustment for stepped ranges, and the
 * compatibility rule replay checks.
 * @module
 */

import { type JsonValue, pyFloat, pyParse, pyStringify } from "./pyjson.ts";

/** A categorical choice: what Optuna allows in `choices`. */
export type Choice = null | boolean | number | string;

/** A parameter's external value: a number for Float/Int, a choice for Categorical. */
export type ParamValue = Choice;

/** `FloatDistribution(low, high, log, step)`. */
export interface FloatDistribution {
  /** Optuna's FloatDistribution. */
  readonly kind: "float";
  /** Lower bound (inclusive). */
  readonly low: number;
  /** Upper bound (inclusive). */
  readonly high: number;
  /** Grid step, or null for a continuous range. */
  readonly step: number | null;
  /** Sampled on a log scale. */
  readonly log: boolean;
}

/** `IntDistribution(low, high, log, step)`. */
export interface IntDistribution {
  /** Optuna's IntDistribution. */
  readonly kind: "int";
  /** Lower bound (inclusive). */
  readonly low: number;
  /** Upper bound (inclusive). */
  readonly high: number;
  /** Step between values (1 for every integer). */
  readonly step: number;
  /** Sampled on a log scale. */
  readonly log: boolean;
}

/** `CategoricalDistribution(choices)`. */
export interface CategoricalDistribution {
  /** Optuna's CategoricalDistribution. */
  readonly kind: "categorical";
  /** The choices, in order (a trial stores the index internally). */
  readonly choices: readonly Choice[];
}

/** Any of Optuna's three distributions. */
export type Distribution = FloatDistribution | IntDistribution | CategoricalDistribution;

/** Thrown for a distribution Optuna would refuse to build. */
export class DistributionError extends RangeError {
  override name = "DistributionError";
}

/** Splits a double's shortest repr into an exact decimal (digits, power of ten). */
function toDecimal(x: number): [bigint, number] {
  const [mant, e] = x.toExponential().split("e") as [string, string];
  const frac = mant.split(".")[1] ?? "";
  return [BigInt(mant.replace(".", "")), Number(e) - frac.length];
}

/** The values as exact decimals scaled to one common power of ten, like Python's `Decimal(str(x))`. */
function aligned(...xs: number[]): { ints: bigint[]; exp: number } {
  const parts = xs.map(toDecimal);
  const exp = Math.min(...parts.map((p) => p[1]));
  return { ints: parts.map(([m, e]) => m * 10n ** BigInt(e - exp)), exp };
}

/**
 * Optuna's `_adjust_discrete_uniform_high`: if (high − low) is not a multiple of step, high
 * becomes low + floor((high − low)/step)·step, in decimal arithmetic on the shortest reprs.
 */
export function adjustFloatHigh(low: number, high: number, step: number): number {
  const { ints, exp } = aligned(high, low, step);
  const [h, l, s] = ints as [bigint, bigint, bigint];
  const r = h - l;
  if (r % s === 0n) return high;
  const v = (r / s) * s + l; // BigInt division truncates toward zero, like Decimal's //.
  const neg = v < 0n;
  return Number(`${neg ? "-" : ""}${(neg ? -v : v).toString()}e${exp}`);
}

/** Builds a FloatDistribution with Optuna's checks and `high` adjustment. */
export function floatDistribution(
  low: number,
  high: number,
  opts: { step?: number | null; log?: boolean } = {},
): FloatDistribution {
  const step = opts.step ?? null;
  const log = opts.log ?? false;
  if (!Number.isFinite(low) || !Number.isFinite(high)) {
    throw new DistributionError(`float low/high must be finite, got low=${low} high=${high}`);
  }
  if (log && step !== null) {
    throw new DistributionError(`float step=${step} and log=true cannot be used together`);
  }
  if (step !== null && !(step > 0)) {
    throw new DistributionError(`float step must be > 0, got ${step}`);
  }
  if (low > high) throw new DistributionError(`float low=${low} must be <= high=${high}`);
  if (log && low <= 0) throw new DistributionError(`float low=${low} must be > 0 for log=true`);
  const h = step !== null ? adjustFloatHigh(low, high, step) : high;
  return { kind: "float", low, high: h, step, log };
}

/** Builds an IntDistribution with Optuna's checks and `high` adjustment. */
export function intDistribution(
  low: number,
  high: number,
  opts: { step?: number; log?: boolean } = {},
): IntDistribution {
  const step = opts.step ?? 1;
  const log = opts.log ?? false;
  for (const [k, v] of [["low", low], ["high", high], ["step", step]] as const) {
    if (!Number.isInteger(v)) throw new DistributionError(`int ${k} must be an integer, got ${v}`);
  }
  if (log && step !== 1) throw new DistributionError(`int step=${step} must be 1 for log=true`);
  if (step <= 0) throw new DistributionError(`int step must be > 0, got ${step}`);
  if (low > high) throw new DistributionError(`int low=${low} must be <= high=${high}`);
  if (log && low < 1) throw new DistributionError(`int low=${low} must be >= 1 for log=true`);
  const r = high - low;
  return {
    kind: "int",
    low,
    high: r % step === 0 ? high : low + Math.floor(r / step) * step,
    step,
    log,
  };
}

/** Builds a CategoricalDistribution; at least one choice is required. */
export function categoricalDistribution(choices: readonly Choice[]): CategoricalDistribution {
  if (choices.length === 0) throw new DistributionError("categorical choices must not be empty");
  for (const c of choices) {
    if (c !== null && !["boolean", "number", "string"].includes(typeof c)) {
      throw new DistributionError(`categorical choice ${JSON.stringify(c)} is not a scalar`);
    }
  }
  return { kind: "categorical", choices: [...choices] };
}

/** Python `==` between two choices: `True == 1`, and NaN equals NaN as Optuna special-cases. */
export function choiceEquals(a: Choice, b: Choice): boolean {
  const num = (v: Choice) => (typeof v === "boolean" ? Number(v) : v);
  const x = num(a);
  const y = num(b);
  if (typeof x === "number" && typeof y === "number") {
    return x === y || (Number.isNaN(x) && Number.isNaN(y));
  }
  return x === y;
}

/** The string Optuna stores for a distribution (`distribution_to_json`, default separators). */
export function distributionToJson(d: Distribution): string {
  let body: JsonValue;
  if (d.kind === "float") {
    body = {
      name: "FloatDistribution",
      attributes: {
        step: d.step === null ? null : pyFloat(d.step),
        low: pyFloat(d.low),
        high: pyFloat(d.high),
        log: d.log,
      },
    };
  } else if (d.kind === "int") {
    body = {
      name: "IntDistribution",
      attributes: { log: d.log, step: d.step, low: d.low, high: d.high },
    };
  } else {
    body = { name: "CategoricalDistribution", attributes: { choices: [...d.choices] } };
  }
  return pyStringify(body, "default");
}

function num(o: Record<string, JsonValue>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number") {
    throw new DistributionError(`${what}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Parses a distribution as Optuna's `json_to_distribution` does: `{name, attributes}` for the
 * current and legacy class names, or the abbreviated `{type: "float"|"int"|"categorical", …}`.
 */
export function distributionFromJson(json: string | JsonValue): Distribution {
  const o = typeof json === "string" ? pyParse(json) : json;
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new DistributionError(`distribution must be a JSON object, got ${JSON.stringify(json)}`);
  }
  const obj = o as Record<string, JsonValue>;
  if ("name" in obj) {
    const name = obj.name;
    const a = (obj.attributes ?? {}) as Record<string, JsonValue>;
    const step = (a.step ?? null) as number | null;
    const log = (a.log ?? false) as boolean;
    switch (name) {
      case "FloatDistribution":
        return floatDistribution(num(a, "low", name), num(a, "high", name), { step, log });
      case "IntDistribution":
        return intDistribution(num(a, "low", name), num(a, "high", name), { step: step ?? 1, log });
      case "CategoricalDistribution":
        return categoricalDistribution(a.choices as Choice[]);
      case "UniformDistribution":
        return floatDistribution(num(a, "low", name), num(a, "high", name));
      case "LogUniformDistribution":
        return floatDistribution(num(a, "low", name), num(a, "high", name), { log: true });
      case "DiscreteUniformDistribution":
        return floatDistribution(num(a, "low", name), num(a, "high", name), {
          step: num(a, "q", name),
        });
      case "IntUniformDistribution":
        return intDistribution(num(a, "low", name), num(a, "high", name), { step: step ?? 1 });
      case "IntLogUniformDistribution":
        return intDistribution(num(a, "low", name), num(a, "high", name), { log: true });
      default:
        throw new DistributionError(`Unknown distribution class: ${JSON.stringify(name)}`);
    }
  }
  const type = obj.type;
  if (type === "categorical") return categoricalDistribution(obj.choices as Choice[]);
  if (type === "float" || type === "int") {
    const low = num(obj, "low", type);
    const high = num(obj, "high", type);
    const step = (obj.step ?? null) as number | null;
    const log = (obj.log ?? false) as boolean;
    return type === "float"
      ? floatDistribution(low, high, { step, log })
      : intDistribution(low, high, { step: step ?? 1, log });
  }
  throw new DistributionError(`Unknown distribution type: ${JSON.stringify(type)}`);
}

/** External value → the number stored as `param_value_internal`. */
export function toInternal(d: Distribution, value: ParamValue): number {
  if (d.kind === "categorical") {
    const i = d.choices.findIndex((c) => choiceEquals(c, value));
    if (i < 0) {
      throw new DistributionError(
        `${JSON.stringify(value)} is not among the choices ${JSON.stringify(d.choices)}`,
      );
    }
    return i;
  }
  if (typeof value !== "number") {
    throw new DistributionError(
      `${d.kind} parameter value must be a number, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** `param_value_internal` → external value (Int: `int(v)`, Categorical: `choices[int(v)]`). */
export function toExternal(d: Distribution, internal: number): ParamValue {
  if (d.kind === "float") return internal;
  if (d.kind === "int") return Math.trunc(internal);
  const c = d.choices[Math.trunc(internal)];
  if (c === undefined) {
    throw new DistributionError(
      `categorical index ${internal} is outside ${d.choices.length} choices`,
    );
  }
  return c;
}

/** Whether the distribution has exactly one possible value (Optuna's `single()`). */
export function isSingle(d: Distribution): boolean {
  if (d.kind === "categorical") return d.choices.length === 1;
  if (d.low === d.high) return true;
  if (d.kind === "int") return !d.log && d.high - d.low < d.step;
  if (d.step === null) return false;
  const [h, l, s] = aligned(d.high, d.low, d.step).ints as [bigint, bigint, bigint];
  return h - l < s;
}

/** Whether an internal value lies inside the distribution (Optuna's `_contains`). */
export function contains(d: Distribution, internal: number): boolean {
  if (d.kind === "categorical") {
    return Number.isInteger(internal) && internal >= 0 && internal < d.choices.length;
  }
  if (d.kind === "float") {
    if (!(d.low <= internal && internal <= d.high)) return false;
    if (d.step === null) return true;
    const k = (internal - d.low) / d.step;
    return Math.abs(k - Math.round(k)) < 1e-8;
  }
  return d.low <= internal && internal <= d.high && (internal - d.low) % d.step === 0;
}

/**
 * Optuna's `check_distribution_compatibility`: same class, same `log`, identical choices.
 * Bounds and step may differ (a dynamic search space). Returns the reason, or null if compatible.
 */
export function incompatibility(a: Distribution, b: Distribution): string | null {
  if (a.kind !== b.kind) return `cannot change the distribution kind from ${a.kind} to ${b.kind}`;
  if (a.kind !== "categorical" && b.kind !== "categorical") {
    return a.log === b.log ? null : `cannot change log from ${a.log} to ${b.log}`;
  }
  const ca = (a as CategoricalDistribution).choices;
  const cb = (b as CategoricalDistribution).choices;
  const same = ca.length === cb.length && ca.every((c, i) => choiceEquals(c, cb[i]!));
  return same ? null : `cannot change choices from ${JSON.stringify(ca)} to ${JSON.stringify(cb)}`;
}

/**
 * Every value low, low + step, … ≤ high of a stepped range, computed in decimal so that
 * 0.1-steps give 0.3 rather than 0.30000000000000004.
 */
export function steppedValues(low: number, high: number, step: number): number[] {
  const { ints, exp } = aligned(low, high, step);
  const [l, h, s] = ints as [bigint, bigint, bigint];
  const out: number[] = [];
  for (let v = l; v <= h; v += s) {
    const neg = v < 0n;
    out.push(Number(`${neg ? "-" : ""}${(neg ? -v : v).toString()}e${exp}`));
  }
  return out;
}
