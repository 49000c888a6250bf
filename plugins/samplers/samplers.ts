/** The built-in search samplers as plugins: `tpe` (Optuna's default), `random`, `grid`. */

import type { SamplerPlugin } from "../../core/train/registry.ts";
import {
  gridOf,
  GridSampler,
  isConditional,
  RandomSampler,
  TpeSampler,
} from "../../core/search/mod.ts";

/** `tpe`: Optuna's independent TPE with `startupTrials` random trials first. */
export const tpeSampler: SamplerPlugin = {
  kind: "sampler",
  name: "tpe",
  description: "Optuna's default independent TPE (24 EI candidates; random startup trials)",
  defaults: {},
  create: (_space, options) =>
    new TpeSampler({ seed: options.seed, nStartupTrials: options.startupTrials }),
};

/** `random`: Optuna's RandomSampler. */
export const randomSampler: SamplerPlugin = {
  kind: "sampler",
  name: "random",
  description: "uniform random sampling (Optuna's RandomSampler)",
  defaults: {},
  create: (_space, options) => new RandomSampler(options.seed),
};

/** `grid`: every combination of the space's grid (int/categorical values, a float's `grid`). */
export const gridSampler: SamplerPlugin = {
  kind: "sampler",
  name: "grid",
  description: "grid search over the space (floats need a grid or step)",
  defaults: {},
  create: (space, options) => {
    if (isConditional(space)) {
      // Optuna's GridSampler needs one fixed grid for every trial; a branch's keys are not.
      throw new RangeError(
        "the grid sampler needs every trial to hold the same parameters, and this space is conditional: use --sampler tpe or random, or list each branch as its own study",
      );
    }
    return new GridSampler(gridOf(space), options.seed);
  },
};

/** Every built-in sampler. */
export const SAMPLERS: SamplerPlugin[] = [tpeSampler, randomSampler, gridSampler];
