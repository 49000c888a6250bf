/**
 * A registry holding every built-in plugin: the models, optimizers, schedules, datasets and search samplers that
 * ship with the project.
 *
 * @module
 */

import { Registry } from "../core/train/registry.ts";
import { fffModel, mlp } from "./models/mlp.ts";
import { bottleneckMlp } from "./models/bottleneck_mlp.ts";
import { aunn } from "./models/aunn.ts";
import { hypernet } from "./models/hypernet.ts";
import { mixer } from "./models/mixer.ts";
import { OPTIMIZERS } from "./optimizers/optimizers.ts";
import { SCHEDULES } from "./schedules/schedules.ts";
import { DATASETS } from "../datasets/plugins.ts";
import { SAMPLERS } from "./samplers/samplers.ts";
import { LOSSES } from "./losses/losses.ts";

/** A new registry with the built-in plugins registered. */
export function builtinRegistry(): Registry {
  const registry = new Registry();
  for (
    const p of [
      mlp,
      fffModel,
      bottleneckMlp,
      aunn,
      hypernet,
      mixer,
      ...OPTIMIZERS,
      ...SCHEDULES,
      ...DATASETS,
      ...SAMPLERS,
      ...LOSSES,
    ]
  ) {
    registry.register(p);
  }
  return registry;
}
