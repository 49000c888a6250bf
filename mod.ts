/**
 * webgpu-trainer: train neural networks, the MLP family first, with hand-written WGSL compute
 * kernels through WebGPU, headless, with nothing but Deno.
 *
 * This module is the library's public API and only re-exports; the command line lives in
 * `main.ts`. Plugins import it as `"webgpu-trainer"` through the import map.
 *
 * @module
 */

export * from "./core/gpu/device.ts";
export * from "./core/gpu/kernels.ts";
export * from "./core/graph/graph.ts";
/** Layers that models build graphs from: `nn.linear`, `nn.layerNorm`, `nn.add`, … */
export * as nn from "./core/graph/nn.ts";
export * from "./core/graph/rules.ts";
export * from "./core/train/registry.ts";
export * from "./core/train/config.ts";
export * from "./core/graph/params.ts";
export * from "./core/train/plan.ts";
export * from "./core/train/trainer.ts";
export * from "./core/train/step.ts";
export * from "./core/train/build.ts";
export * from "./core/train/recipe.ts";
export * from "./core/train/evaluator.ts";
export * from "./core/train/checkpoints.ts";
export * from "./core/gpu/counters.ts";
export * from "./core/io/checkpoint.ts";
export * from "./plugins/mod.ts";
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
} from "./core/io/safetensors.ts";
export type { DType, Safetensors } from "./core/io/safetensors.ts";
export { curvesOption, curvesSvg, logScaleHelps } from "./core/io/curves.ts";
export type { CurveSeries, CurvesOptions } from "./core/io/curves.ts";
export { type ChartOption, type ChartSize, PALETTE, renderSvg } from "./core/io/charts.ts";
export * from "./core/ops/mixup.ts";
export * from "./core/graph/elementwise_op.ts";
export * from "./core/util/testing.ts";
export * from "./core/search/mod.ts";
export * from "./core/ops/ceilings.ts";
export * from "./core/util/random.ts";
