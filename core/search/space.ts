/**
 * The search-space file: JSON mapping each parameter to
 * `{"type":"float","low","high","log"?,"step"?}`, `{"type":"int","low","high","log"?,"step"?}`
 * or `{"type":"categorical","choices":[…]}`; any of them may carry `"grid": [values]` for the
 * grid sampler. Parameters are suggested in the file's key order.
 * @module
 */

import {
  categoricalDistribution,
  type Choice,
  type Distribution,
  DistributionError,
  floatDistribution,
  intDistribution,
  steppedValues,
} from "./distributions.ts";

/** One parameter of a search space. */
export interface ParamSpec {
  readonly name: string;
  readonly distribution: Distribution;
  /** Explicit grid values, or null to derive them (see {@link gridOf}). */
  readonly grid: readonly Choice[] | null;
}

/** A parsed search space, in suggestion order. */
export interface SearchSpace {
  readonly params: readonly ParamSpec[];
}

const KEYS: Record<string, string[]> = {
  float: ["type", "low", "high", "log", "step", "grid"],
  int: ["type", "low", "high", "log", "step", "grid"],
  categorical: ["type", "choices", "grid"],
};

/** Largest grid derived from an int or stepped float range. */
const MAX_DERIVED_GRID = 100_000;

/** Parses a search space from JSON text or an already parsed object. */
export function parseSearchSpace(json: string | unknown): SearchSpace {
  const o = typeof json === "string" ? JSON.parse(json) : json;
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new TypeError(
      `search space must be a JSON object of parameters, got ${JSON.stringify(o)}`,
    );
  }
  const params: ParamSpec[] = [];
  for (const [name, raw] of Object.entries(o as Record<string, unknown>)) {
    const spec = raw as Record<string, unknown>;
    const type = spec?.type;
    if (typeof type !== "string" || !(type in KEYS)) {
      throw new RangeError(
        `parameter "${name}": unknown type ${
          JSON.stringify(type)
        }: known are "categorical", "float", "int"`,
      );
    }
    const extra = Object.keys(spec).filter((k) => !KEYS[type]!.includes(k));
    if (extra.length > 0) {
      throw new RangeError(
        `parameter "${name}": unknown key(s) ${extra.join(", ")} for type "${type}"`,
      );
    }
    let grid: Choice[] | null = null;
    if (spec.grid !== undefined) {
      if (!Array.isArray(spec.grid) || spec.grid.length === 0) {
        throw new RangeError(
          `parameter "${name}": grid must be a non-empty list, got ${JSON.stringify(spec.grid)}`,
        );
      }
      grid = spec.grid as Choice[];
    }
    const num = (k: string): number => {
      const v = spec[k];
      if (typeof v !== "number") {
        throw new RangeError(
          `parameter "${name}": "${k}" must be a number, got ${JSON.stringify(v)}`,
        );
      }
      return v;
    };
    let distribution: Distribution;
    try {
      if (type === "categorical") {
        if (!Array.isArray(spec.choices)) {
          throw new RangeError(`"choices" must be a list, got ${JSON.stringify(spec.choices)}`);
        }
        distribution = categoricalDistribution(spec.choices as Choice[]);
      } else {
        const log = spec.log ?? false;
        if (typeof log !== "boolean") {
          throw new RangeError(`"log" must be true or false, got ${JSON.stringify(log)}`);
        }
        const step = spec.step === undefined || spec.step === null ? undefined : num("step");
        distribution = type === "float"
          ? floatDistribution(num("low"), num("high"), { step, log })
          : intDistribution(num("low"), num("high"), { step, log });
      }
    } catch (e) {
      if (e instanceof DistributionError || e instanceof RangeError) {
        throw new RangeError(`parameter "${name}": ${e.message}`);
      }
      throw e;
    }
    params.push({ name, distribution, grid });
  }
  return { params };
}

/**
 * The grid values of each parameter: the explicit `grid`, else the choices, every int in range
 * (by step), or every step of a stepped float. A float without step or grid is an error.
 */
export function gridOf(space: SearchSpace): Record<string, Choice[]> {
  const out: Record<string, Choice[]> = {};
  for (const { name, distribution: d, grid } of space.params) {
    if (grid) {
      out[name] = [...grid];
      continue;
    }
    if (d.kind === "categorical") {
      out[name] = [...d.choices];
      continue;
    }
    if (d.kind === "float" && d.step === null) {
      throw new RangeError(
        `parameter "${name}": a float without "step" needs an explicit "grid" for grid search`,
      );
    }
    const step = d.kind === "int" ? d.step : d.step!;
    const count = Math.floor((d.high - d.low) / step) + 1;
    if (count > MAX_DERIVED_GRID) {
      throw new RangeError(
        `parameter "${name}": ${count} grid values is too many; give an explicit "grid"`,
      );
    }
    out[name] = d.kind === "int"
      ? Array.from({ length: count }, (_, i) => d.low + i * step)
      : steppedValues(d.low, d.high, step);
  }
  return out;
}
