/**
 * The command line, the top layer: each command parses its flags, builds a registry from the
 * built-in plugins (plugins/mod.ts, imported only here) and the `--plugin` modules, and runs.
 *
 * @module
 */

export * from "./train_command.ts";
export * from "./search_command.ts";
export * from "./bench_command.ts";
export * from "./bench_suite_command.ts";
export * from "./compile_command.ts";
export * from "./report_command.ts";
export * from "./generate_command.ts";
export * from "./export_command.ts";
export * from "./eval_command.ts";
