/**
 * The built-in optimizers: thin plugins over the fused kernels of `wgsl/optimizer.wgsl`. Each
 * names its state slots (saved as `optim.<param>.<slot>`) and owns its config keys.
 */

import type { Config, OptimizerContext, OptimizerPlugin } from "../../core/train/registry.ts";
import { adam, lamb, lion, sgd } from "../../core/ops/optimizer.ts";

function num(config: Config, key: string): number {
  const v = Number(config[key]);
  if (!Number.isFinite(v)) {
    throw new RangeError(`${key} must be a number, got ${JSON.stringify(config[key])}`);
  }
  return v;
}

function common(ctx: OptimizerContext) {
  return {
    params: ctx.params,
    grads: ctx.grads,
    segments: ctx.segments,
    segmentCount: ctx.segmentCount,
    counters: ctx.counters,
    lrTable: ctx.lrTable,
    gradNorm: ctx.gradNorm,
    n: ctx.n,
    maxNorm: ctx.maxGradNorm,
    gradScale: ctx.gradScale,
  };
}

/** `sgd`: torch.optim.SGD (momentum, dampening, nesterov, coupled weight decay). */
export const sgdPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "sgd",
  description: "SGD with momentum (torch.optim.SGD): momentum, dampening, nesterov",
  defaults: { momentum: 0.9, dampening: 0, nesterov: false },
  keys: { momentum: { min: 0 }, dampening: { min: 0, max: 1 } },
  slots: ["momentum_buffer"],
  create(ctx, config) {
    return sgd(ctx.kernels, {
      ...common(ctx),
      m: ctx.state[0],
      momentum: num(config, "momentum"),
      dampening: num(config, "dampening"),
      nesterov: config.nesterov === true || config.nesterov === "true",
    });
  },
};

const adamDefaults = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
/** β in [0, 1); eps > 0 (eps = 0 divides by zero where a moment is 0). */
const betaKeys = {
  beta1: { min: 0, max: 1, maxExclusive: true },
  beta2: { min: 0, max: 1, maxExclusive: true },
};
const adamKeys = { ...betaKeys, eps: { min: 0, minExclusive: true } };

function adamCreate(decoupled: boolean) {
  return (ctx: OptimizerContext, config: Config) =>
    adam(ctx.kernels, {
      ...common(ctx),
      m: ctx.state[0]!,
      v: ctx.state[1]!,
      beta1: num(config, "beta1"),
      beta2: num(config, "beta2"),
      eps: num(config, "eps"),
      decoupled,
    });
}

/** `adam`: torch.optim.Adam (weight decay as L2 added to the gradient). */
export const adamPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "adam",
  description: "Adam (torch.optim.Adam; weight decay as L2): beta1, beta2, eps",
  defaults: adamDefaults,
  keys: adamKeys,
  slots: ["exp_avg", "exp_avg_sq"],
  create: adamCreate(false),
};

/** `adamw`: torch.optim.AdamW (decoupled weight decay). */
export const adamwPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "adamw",
  description: "AdamW (torch.optim.AdamW; decoupled weight decay): beta1, beta2, eps",
  defaults: adamDefaults,
  keys: adamKeys,
  slots: ["exp_avg", "exp_avg_sq"],
  create: adamCreate(true),
};

/** `lion`: as scaling_mlps' Lion (decoupled decay, sign update). */
export const lionPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "lion",
  description: "LION (Chen et al. 2023, as scaling_mlps): beta1, beta2",
  defaults: { beta1: 0.9, beta2: 0.99 },
  keys: betaKeys,
  slots: ["exp_avg"],
  create(ctx, config) {
    return lion(ctx.kernels, {
      ...common(ctx),
      m: ctx.state[0]!,
      beta1: num(config, "beta1"),
      beta2: num(config, "beta2"),
    });
  },
};

/** `lamb`: timm's Lamb (per-tensor trust ratio from a segmented norm pass). */
export const lambPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "lamb",
  description: "LAMB (timm's Lamb, per-tensor trust ratio): beta1, beta2, eps",
  defaults: { beta1: 0.9, beta2: 0.999, eps: 1e-6 },
  keys: adamKeys,
  slots: ["exp_avg", "exp_avg_sq", "update"],
  create(ctx, config) {
    const segNorms = ctx.kernels.gpu.storage("lamb segment norms", 8 * ctx.segmentCount);
    return lamb(ctx.kernels, {
      ...common(ctx),
      m: ctx.state[0]!,
      v: ctx.state[1]!,
      update: ctx.state[2]!,
      segNorms,
      beta1: num(config, "beta1"),
      beta2: num(config, "beta2"),
      eps: num(config, "eps"),
    });
  },
};

/** Every built-in optimizer. */
export const OPTIMIZERS: OptimizerPlugin[] = [
  sgdPlugin,
  adamPlugin,
  adamwPlugin,
  lionPlugin,
  lambPlugin,
];
