/**
 * Files: safetensors, checkpoints, the run's charts and the study report's page.
 *
 * @module
 */

export * from "./safetensors.ts";
export * from "./checkpoint.ts";
export * from "./charts.ts";
export * from "./curves.ts";
export * from "./report_html.ts";
export * from "./study_charts.ts";
export * from "./data_files.ts";
