/**
 * Benchmark pieces: timing of dispatch lists, time budgets, the TF.js and PyTorch peers measured in
 * the same run, and the GPU suite (`deno task bench --suite gpu`).
 *
 * @module
 */

export * from "./timing.ts";
export * from "./step_time.ts";
export * from "./budget.ts";
export * from "./shapes.ts";
export * from "./tfjs_peer.ts";
export * from "./torch_peer.ts";
export * from "./suite_plan.ts";
export * from "./suite_report.ts";
export * from "./suite_kernels.ts";
export * from "./suite_steps.ts";
export * from "./suite_peers.ts";
export * from "./gpu_suite.ts";
