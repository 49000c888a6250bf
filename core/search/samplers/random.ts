/**
 * Optuna's `RandomSampler` (spec §5.1), drawing from a numpy-compatible `RandomState(seed)` in
 * the same order, so a seeded run proposes the same values as Optuna's.
 * @module
 */

import type { Distribution, ParamValue } from "../distributions.ts";
import { RandomState } from "../mt19937.ts";
import { randomSeed, type Sampler, type SearchContext } from "./sampler.ts";

/** numpy's `round` (`rint`): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const view = new DataView(new ArrayBuffer(8));
/** `numpy.nextafter(x, -inf)`: the largest double below finite x. */
export function nextDown(x: number): number {
  if (x === 0) return -Number.MIN_VALUE;
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x > 0 ? bits - 1n : bits + 1n);
  return view.getFloat64(0);
}

/** Snaps a value to low + k·step, clipped to [low, high] (Optuna's untransform for steps). */
export function snapToStep(x: number, low: number, high: number, step: number): number {
  return Math.min(Math.max(roundHalfEven((x - low) / step) * step + low, low), high);
}

/** One draw for `dist` from `rng`, exactly as Optuna's `RandomSampler.sample_independent`. */
export function sampleRandom(rng: RandomState, dist: Distribution): ParamValue {
  if (dist.kind === "categorical") {
    let best = 0;
    let bestU = -1;
    for (let i = 0; i < dist.choices.length; i++) {
      const u = rng.uniform(0, 1);
      if (u > bestU) [best, bestU] = [i, u];
    }
    return dist.choices[best]!;
  }
  const { low, high } = dist;
  if (dist.kind === "float") {
    if (dist.log) {
      const v = Math.exp(rng.uniform(Math.log(low), Math.log(high)));
      return low === high ? v : Math.min(v, nextDown(high));
    }
    if (dist.step !== null) {
      const s = dist.step;
      return snapToStep(rng.uniform(low - 0.5 * s, high + 0.5 * s), low, high, s);
    }
    const v = rng.uniform(low, high);
    return low === high ? v : Math.min(v, nextDown(high));
  }
  if (dist.log) {
    const t = rng.uniform(Math.log(low - 0.5), Math.log(high + 0.5));
    return Math.min(Math.max(roundHalfEven(Math.exp(t)), low), high);
  }
  const s = dist.step;
  return snapToStep(rng.uniform(low - 0.5 * s, high + 0.5 * s), low, high, s);
}

/** Independent uniform sampling, seeded like `optuna.samplers.RandomSampler(seed)`. */
export class RandomSampler implements Sampler {
  readonly name = "random";
  /**
   * numpy's legacy MT19937 `RandomState`, seeded with `seed`.
   * @internal
   */
  readonly rng: RandomState;

  /** `seed` in [0, 2^32); a random one if omitted. */
  constructor(readonly seed: number = randomSeed()) {
    this.rng = new RandomState(seed);
  }

  sampleIndependent(_ctx: SearchContext, _param: string, dist: Distribution): ParamValue {
    return sampleRandom(this.rng, dist);
  }
}
