/**
 * Benchmark pieces: timing of dispatch lists and the TF.js and PyTorch peers measured in the same
 * run.
 *
 * @module
 */

export * from "./timing.ts";
export * from "./step_time.ts";
export * from "./tfjs_peer.ts";
export * from "./torch_peer.ts";
