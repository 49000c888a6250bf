/**
 * One typed binding per WGSL kernel (wgsl/<name>.wgsl), and the per-adapter matmul tile cache.
 *
 * @module
 */

export * from "./activation.ts";
export * from "./activation_ids.ts";
export * from "./adversarial.ts";
export * from "./bce_with_logits.ts";
export * from "./bias_grad.ts";
export * from "./conv.ts";
export * from "./ceilings.ts";
export * from "./dropout.ts";
export * from "./position_encoding.ts";
export * from "./elementwise.ts";
export * from "./gather.ts";
export * from "./index_bits.ts";
export * from "./image_view.ts";
export * from "./layernorm.ts";
export * from "./matmul.ts";
export * from "./mixup.ts";
export * from "./normal.ts";
export * from "./optimizer.ts";
export * from "./predictions.ts";
export * from "./reduce.ts";
export * from "./softmax_cross_entropy.ts";
export * from "./tuning.ts";
