/**
 * Runs: the plugin registry and config, data on the GPU, the static plan, the step as data, evaluation, checkpoints and the loop.
 *
 * @module
 */

export * from "./registry.ts";
export * from "./config.ts";
export * from "./data.ts";
export * from "./split.ts";
export * from "./load_data.ts";
export * from "./augment.ts";
export * from "./streaming.ts";
export * from "./plan.ts";
export * from "./step.ts";
export * from "./build.ts";
export * from "./recipe.ts";
export * from "./evaluator.ts";
export * from "./checkpoints.ts";
export * from "./trainer.ts";
export * from "./export.ts";
