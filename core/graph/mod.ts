/**
 * Symbolic graphs of ops on static-shape tensors, the op rules (forward and backward side by side, in per-run tables), reverse-mode autodiff, the flat parameter layout and plugin elementwise ops.
 *
 * @module
 */

export * from "./graph.ts";
export * from "./rules.ts";
export * from "./autodiff.ts";
export * from "./flops.ts";
export * from "./params.ts";
export * from "./elementwise_op.ts";
export * as nn from "./nn.ts";
