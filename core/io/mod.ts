/**
 * Files: safetensors, checkpoints, and the run's charts.
 *
 * @module
 */

export * from "./safetensors.ts";
export * from "./checkpoint.ts";
export * from "./charts.ts";
export * from "./curves.ts";
