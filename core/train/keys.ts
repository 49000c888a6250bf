/**
 * The key schema: every config key — the trainer's and each plugin's — has a type and a range, so
 * a value is checked where it enters (a flag, a `--config` file, a resumed run, a search trial)
 * and a bad one is an error naming the key, where it came from, and what is allowed. An unknown
 * key gets the closest known ones first, and a key owned by a plugin that is not selected names
 * that plugin.
 *
 * @module
 */

import { distance } from "fastest-levenshtein";

/** What a key holds. */
export type KeyType = "int" | "number" | "boolean" | "string";

/** A key's type, default and allowed values. */
export interface KeySpec {
  /** The value's type ("int": a number that must be an integer). */
  type: KeyType;
  /** The value a config holds when the key is not given. */
  default: unknown;
  /** Bounds of numbers (inclusive unless `minExclusive`/`maxExclusive`). */
  min?: number;
  /** Upper bound of numbers (inclusive unless `maxExclusive`). */
  max?: number;
  /** Whether `min` itself is excluded. */
  minExclusive?: boolean;
  /** Whether `max` itself is excluded. */
  maxExclusive?: boolean;
  /** The allowed strings. */
  choices?: readonly string[];
  /** One line for --help. */
  help?: string;
}

/** A spec with the type taken from a default value (numbers: any finite value). */
export function inferSpec(value: unknown): KeySpec {
  if (typeof value === "number") {
    return { type: "number", default: value };
  }
  if (typeof value === "boolean") return { type: "boolean", default: value };
  return { type: "string", default: value ?? "" };
}

/** The allowed range of a spec in words: "an integer ≥ 1", "a number in (0, 1]". */
export function describeSpec(spec: KeySpec): string {
  if (spec.type === "boolean") return "true or false";
  if (spec.type === "string") {
    return spec.choices ? `one of ${spec.choices.map((c) => `"${c}"`).join(", ")}` : "a string";
  }
  const what = spec.type === "int" ? "an integer" : "a number";
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) {
    return `${what} in ${spec.minExclusive ? "(" : "["}${min}, ${max}${
      spec.maxExclusive ? ")" : "]"
    }`;
  }
  if (min !== undefined) return `${what} ${spec.minExclusive ? ">" : "≥"} ${min}`;
  if (max !== undefined) return `${what} ${spec.maxExclusive ? "<" : "≤"} ${max}`;
  return `a finite ${spec.type === "int" ? "integer" : "number"}`;
}

/**
 * Checks (and for strings from a command line, converts) one value against its spec; returns the
 * value to keep. `where` names the key and its source in the error, e.g. `--lr` or
 * `--config run.json: key "lr"`.
 */
export function checkValue(spec: KeySpec, value: unknown, where: string): unknown {
  const fail = (): never => {
    throw new RangeError(`${where} must be ${describeSpec(spec)}, got ${JSON.stringify(value)}`);
  };
  if (spec.type === "boolean") {
    if (value === true || value === false) return value;
    if (value === "true" || value === "false") return value === "true";
    return fail();
  }
  if (spec.type === "string") {
    // JSON files may give a list key as numbers: "512,256" ↔ [512, 256], "128" ↔ 128.
    if (typeof value === "number" && Number.isFinite(value)) value = String(value);
    if (Array.isArray(value) && value.every((v) => typeof v === "number")) value = value.join(",");
    if (typeof value !== "string") return fail();
    if (spec.choices && !spec.choices.includes(value)) return fail();
    return value;
  }
  const v = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof v !== "number" || !Number.isFinite(v)) return fail();
  if (spec.type === "int" && !Number.isInteger(v)) return fail();
  if (spec.min !== undefined && (spec.minExclusive ? v <= spec.min : v < spec.min)) return fail();
  if (spec.max !== undefined && (spec.maxExclusive ? v >= spec.max : v > spec.max)) return fail();
  return v;
}

/** The known names closest to `name` (edit distance ≤ a third of its length, at most 3). */
export function closestNames(name: string, known: Iterable<string>, max = 3): string[] {
  const limit = Math.max(2, Math.ceil(name.length / 3));
  return [...known]
    .map((k) => [k, distance(name, k)] as const)
    .filter(([k, d]) => d <= limit && k !== name)
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([k]) => k);
}

/** `--batch-size` for `batch_size`. */
export function flagOf(key: string): string {
  return `--${key.replaceAll("_", "-")}`;
}
