/**
 * webgpu-trainer: train neural networks, the MLP family first, with hand-written WGSL compute
 * kernels through WebGPU, headless, with nothing but Deno.
 *
 * This module is the library's public API and only re-exports; the command line lives in
 * `main.ts`. Plugins import it as `"webgpu-trainer"` through the import map.
 *
 * @module
 */

export * from "./core/device.ts";
export * from "./core/kernels.ts";
export * from "./core/graph.ts";
/** Layers that models build graphs from: `nn.linear`, `nn.layerNorm`, `nn.add`, … */
export * as nn from "./core/nn.ts";
export * from "./core/rules.ts";
export * from "./core/registry.ts";
export * from "./core/config.ts";
export * from "./core/params.ts";
export * from "./core/plan.ts";
export * from "./core/trainer.ts";
export * from "./core/counters.ts";
export * from "./core/checkpoint.ts";
export * from "./core/builtins.ts";
export * from "./core/ops/activation.ts";
export * from "./core/ops/bias_grad.ts";
export * from "./core/ops/bce_with_logits.ts";
export * from "./core/ops/dropout.ts";
export * from "./core/ops/elementwise.ts";
export * from "./core/ops/gather.ts";
export * from "./core/ops/layernorm.ts";
export * from "./core/ops/matmul.ts";
export * from "./core/ops/normal.ts";
export * from "./core/ops/optimizer.ts";
export * from "./core/ops/reduce.ts";
export * from "./core/ops/softmax_cross_entropy.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensorsAtomic,
} from "./core/safetensors.ts";
export type { DType, Safetensors } from "./core/safetensors.ts";
export { curvesSvg } from "./core/plot.ts";
export * from "./core/ops/mixup.ts";
export * from "./core/elementwise_op.ts";
export * from "./core/testing.ts";
export * from "./core/search/mod.ts";
export * from "./core/ops/ceilings.ts";
export * from "./core/random.ts";
