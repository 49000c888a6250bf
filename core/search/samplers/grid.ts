/**
 * Optuna's `GridSampler` (3.1 behaviour, spec §5.2): the grid is the cartesian product of the
 * value lists with parameter names sorted; each new trial takes a random grid point that no
 * finished or running trial of the same grid holds (finished-only when none is left), and
 * records it as the trial system attrs `search_space` then `grid_id`, so Optuna's GridSampler
 * and ours share one journal. The study stops once no unvisited point remains.
 * @module
 */

import type { Choice, Distribution, ParamValue } from "../distributions.ts";
import { choiceEquals } from "../distributions.ts";
import { isFinished, TrialState } from "../journal.ts";
import { RandomState } from "../mt19937.ts";
import type { JsonValue } from "../pyjson.ts";
import { randomSeed, type Sampler, type SearchContext } from "./sampler.ts";

/** numpy legacy `randint(0, n)` for n ≤ 2^32: masked rejection sampling on 32-bit draws. */
export function randomIndex(rng: RandomState, n: number): number {
  const max = n - 1;
  if (max === 0) return 0;
  let mask = max;
  for (let s = 1; s < 32; s *= 2) mask |= mask >>> s;
  mask >>>= 0;
  for (;;) {
    const v = (rng.nextUint32() & mask) >>> 0;
    if (v <= max) return v;
  }
}

/** Exhaustive search over a fixed grid of values per parameter. */
export class GridSampler implements Sampler {
  readonly name = "grid";
  /** Parameter names, sorted. */
  readonly paramNames: string[];
  /** Values per sorted name, as stored in the `search_space` attr. */
  readonly searchSpace: Record<string, Choice[]>;
  /** Number of grid points: the product of the value lists' lengths. */
  readonly size: number;
  /**
   * Picks among the unvisited grid points; seeded with `seed`.
   * @internal
   */
  readonly rng: RandomState;

  /** `grid`: name → values (each list keeps its order). */
  constructor(grid: Record<string, readonly Choice[]>, readonly seed: number = randomSeed()) {
    this.paramNames = Object.keys(grid).sort();
    this.searchSpace = {};
    let size = 1;
    for (const k of this.paramNames) {
      const values = grid[k]!;
      if (values.length === 0) throw new RangeError(`grid for "${k}" has no values`);
      this.searchSpace[k] = [...values];
      size *= values.length;
    }
    this.size = size;
    this.rng = new RandomState(seed);
  }

  /** The value of `param` at grid point `gridId` (row-major over sorted names, last fastest). */
  valueAt(gridId: number, param: string): Choice {
    let rest = gridId;
    let value: Choice = null;
    for (let i = this.paramNames.length - 1; i >= 0; i--) {
      const values = this.searchSpace[this.paramNames[i]!]!;
      const v = values[rest % values.length]!;
      rest = Math.floor(rest / values.length);
      if (this.paramNames[i] === param) value = v;
    }
    return value;
  }

  /** Whether a stored `search_space` attr describes this grid (NaN-aware). */
  sameGrid(stored: JsonValue | undefined): boolean {
    if (stored === null || typeof stored !== "object" || Array.isArray(stored)) return false;
    const s = stored as Record<string, JsonValue>;
    const keys = Object.keys(s).sort();
    if (keys.length !== this.paramNames.length || keys.some((k, i) => k !== this.paramNames[i])) {
      return false;
    }
    return keys.every((k) => {
      const a = s[k];
      const b = this.searchSpace[k]!;
      return Array.isArray(a) && a.length === b.length &&
        a.every((v, i) => choiceEquals(v as Choice, b[i]!));
    });
  }

  /** Grid ids not yet finished (and not running, unless only running ones are left). */
  unvisited(ctx: SearchContext): number[] {
    const finished = new Set<number>();
    const running = new Set<number>();
    for (const t of ctx.trials) {
      const id = t.systemAttrs.grid_id;
      if (typeof id !== "number" || !this.sameGrid(t.systemAttrs.search_space)) continue;
      if (isFinished(t.state)) finished.add(id);
      else if (t.state === TrialState.RUNNING) running.add(id);
    }
    const all = Array.from({ length: this.size }, (_, i) => i);
    const free = all.filter((i) => !finished.has(i) && !running.has(i));
    return free.length > 0 ? free : all.filter((i) => !finished.has(i));
  }

  beforeTrial(ctx: SearchContext): [string, JsonValue][] {
    const attrs = ctx.trial.systemAttrs;
    if ("grid_id" in attrs || "fixed_params" in attrs) return [];
    let targets = this.unvisited(ctx);
    // Exhausted: re-evaluate a random point (Optuna warns and does the same).
    if (targets.length === 0) targets = Array.from({ length: this.size }, (_, i) => i);
    const gridId = targets[randomIndex(this.rng, targets.length)]!;
    return [["search_space", this.searchSpace], ["grid_id", gridId]];
  }

  sampleIndependent(ctx: SearchContext, param: string, _dist: Distribution): ParamValue {
    const gridId = ctx.trial.systemAttrs.grid_id;
    if (typeof gridId !== "number") {
      throw new RangeError(
        `trial ${ctx.trial.number} has no grid_id: all parameters must be on the grid`,
      );
    }
    if (!(param in this.searchSpace)) {
      throw new RangeError(
        `parameter "${param}" is not in the grid: known are ${this.paramNames.join(", ")}`,
      );
    }
    return this.valueAt(gridId, param);
  }

  afterTrial(ctx: SearchContext): boolean {
    const left = this.unvisited(ctx);
    if (left.length === 0) return true;
    return left.length === 1 && left[0] === ctx.trial.systemAttrs.grid_id;
  }
}
