/**
 * A registry holding every built-in plugin: the models, optimizers, schedules, datasets and search samplers that
 * ship with the project.
 *
 * @module
 */

import { Registry } from "./registry.ts";
import { mlp } from "../plugins/models/mlp.ts";
import { bottleneckMlp } from "../plugins/models/bottleneck_mlp.ts";
import { OPTIMIZERS } from "../plugins/optimizers/optimizers.ts";
import { SCHEDULES } from "../plugins/schedules/schedules.ts";
import { DATASETS } from "../datasets/plugins.ts";
import { SAMPLERS } from "../plugins/samplers/samplers.ts";

/** A new registry with the built-in plugins registered. */
export function builtinRegistry(): Registry {
  const registry = new Registry();
  for (const p of [mlp, bottleneckMlp, ...OPTIMIZERS, ...SCHEDULES, ...DATASETS, ...SAMPLERS]) {
    registry.register(p);
  }
  return registry;
}
