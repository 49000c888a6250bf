/**
 * The search-space file: JSON mapping each parameter to
 * `{"type":"float","low","high","log"?,"step"?}`, `{"type":"int","low","high","log"?,"step"?}`
 * or `{"type":"categorical","choices":[…]}`; any of them may carry `"grid": [values]` for the
 * grid sampler. Parameters are suggested in the file's key order. A categorical may carry
 * `"conditional": {"<choice>": {<sub-space>}, …}`: the sub-space of the chosen value is
 * suggested right after it, and a trial holds only the parameters it used (as Optuna's
 * define-by-run trials do), e.g. `{"optimizer": {"type": "categorical", "choices": ["adam",
 * "sgd"], "conditional": {"adam": {"beta1": …}, "sgd": {"momentum": …}}}}`.
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
  /** The parameter's name (its key in the file). */
  readonly name: string;
  /** The distribution its values are sampled from. */
  readonly distribution: Distribution;
  /** Explicit grid values, or null to derive them (see {@link gridOf}). */
  readonly grid: readonly Choice[] | null;
  /** A categorical's sub-spaces by choice (`String(choice)`), suggested after it. */
  readonly branches?: ReadonlyMap<string, readonly ParamSpec[]>;
}

/** A parsed search space, in suggestion order. */
export interface SearchSpace {
  /** Top-level parameters, in the file's key order (sub-spaces under `branches`). */
  readonly params: readonly ParamSpec[];
}

const KEYS: Record<string, string[]> = {
  float: ["type", "low", "high", "log", "step", "grid"],
  int: ["type", "low", "high", "log", "step", "grid"],
  categorical: ["type", "choices", "grid", "conditional"],
};

/** Largest grid derived from an int or stepped float range. */
const MAX_DERIVED_GRID = 100_000;

/** Parses a search space from JSON text or an already parsed object. */
export function parseSearchSpace(json: string | unknown): SearchSpace {
  return { params: parseParams(typeof json === "string" ? JSON.parse(json) : json, "") };
}

/** Every parameter a space may suggest (each branch's too), by name, first definition first. */
export function allParams(space: SearchSpace): ParamSpec[] {
  const out: ParamSpec[] = [];
  const walk = (ps: readonly ParamSpec[]) => {
    for (const p of ps) {
      out.push(p);
      for (const sub of p.branches?.values() ?? []) walk(sub);
    }
  };
  walk(space.params);
  return out;
}

/** Whether a space has conditional parameters. */
export function isConditional(space: SearchSpace): boolean {
  return space.params.some((p) => p.branches !== undefined);
}

function parseParams(o: unknown, where: string): ParamSpec[] {
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new TypeError(
      `search space must be a JSON object of parameters, got ${JSON.stringify(o)}`,
    );
  }
  const params: ParamSpec[] = [];
  for (const [key, raw] of Object.entries(o as Record<string, unknown>)) {
    const name = key;
    const label = `${where}parameter "${name}"`;
    const spec = raw as Record<string, unknown>;
    const type = spec?.type;
    if (typeof type !== "string" || !(type in KEYS)) {
      throw new RangeError(
        `${label}: unknown type ${JSON.stringify(type)}: known are "categorical", "float", "int"`,
      );
    }
    const extra = Object.keys(spec).filter((k) => !KEYS[type]!.includes(k));
    if (extra.length > 0) {
      throw new RangeError(
        `${label}: unknown key(s) ${extra.join(", ")} for type "${type}"`,
      );
    }
    let grid: Choice[] | null = null;
    if (spec.grid !== undefined) {
      if (!Array.isArray(spec.grid) || spec.grid.length === 0) {
        throw new RangeError(
          `${label}: grid must be a non-empty list, got ${JSON.stringify(spec.grid)}`,
        );
      }
      grid = spec.grid as Choice[];
    }
    const num = (k: string): number => {
      const v = spec[k];
      if (typeof v !== "number") {
        throw new RangeError(
          `${label}: "${k}" must be a number, got ${JSON.stringify(v)}`,
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
        throw new RangeError(`${label}: ${e.message}`);
      }
      throw e;
    }
    let branches: Map<string, ParamSpec[]> | undefined;
    if (spec.conditional !== undefined) {
      const c = spec.conditional;
      if (c === null || typeof c !== "object" || Array.isArray(c)) {
        throw new RangeError(`${label}: "conditional" must map choices to sub-spaces`);
      }
      const choices = (distribution as { choices: readonly Choice[] }).choices.map(String);
      branches = new Map();
      for (const [choice, sub] of Object.entries(c as Record<string, unknown>)) {
        if (!choices.includes(choice)) {
          throw new RangeError(
            `${label}: "conditional" names "${choice}", which is not one of its choices ${
              JSON.stringify(choices)
            }`,
          );
        }
        branches.set(choice, parseParams(sub, `${where}${name}=${choice}: `));
      }
    }
    params.push({ name, distribution, grid, ...(branches ? { branches } : {}) });
  }
  return params;
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
