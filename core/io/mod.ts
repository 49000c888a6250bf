/**
 * Files: safetensors, checkpoints, and the run's charts.
 *
 * @module
 */

export * from "./safetensors.ts";
export * from "./checkpoint.ts";
export * from "./plot.ts";
export * from "./data_files.ts";
