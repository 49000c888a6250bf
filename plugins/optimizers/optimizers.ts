/**
 * The built-in optimizers: thin plugins over the fused kernels of `wgsl/optimizer.wgsl` (sgd, lamb)
 * and `defineOptimizer` rules over `wgsl/optimizer_template.wgsl` (adam, adamw, lion, …). Each
 * names its state slots (saved as `optim.<param>.<slot>`) and owns its config keys.
 */

import type { Config, OptimizerContext, OptimizerPlugin } from "../../core/train/registry.ts";
import { lamb, sgd } from "../../core/ops/optimizer.ts";
import { defineOptimizer } from "../../core/train/define_optimizer.ts";
import { NOISE_TARGETS, parameterNoise } from "./noise.ts";
import { samPlugin, ssamPlugin } from "./sam.ts";

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

/** β in [0, 1); eps > 0 (eps = 0 divides by zero where a moment is 0). */
const beta = (d: number) => ({ default: d, min: 0, max: 1, maxExclusive: true });
const eps = (d: number) => ({ default: d, min: 0, minExclusive: true });

/** Adam's moments and bias-corrected step (torch.optim.Adam's order of operations). */
const ADAM_UPDATE = `
  exp_avg = hyper.beta1 * exp_avg + hyper.one_minus_beta1 * g;
  exp_avg_sq = hyper.beta2 * exp_avg_sq + hyper.one_minus_beta2 * g * g;
  let denom = sqrt(exp_avg_sq) / sqrt(one_minus_pow(hyper.log_beta2, t)) + hyper.eps;
  p = p - lr * (exp_avg / one_minus_pow(hyper.log_beta1, t)) / denom;`;

/** `adam`: torch.optim.Adam (weight decay as L2 added to the gradient). */
export const adamPlugin: OptimizerPlugin = defineOptimizer({
  name: "adam",
  description: "Adam (torch.optim.Adam; weight decay as L2): beta1, beta2, eps",
  slots: ["exp_avg", "exp_avg_sq"],
  hyper: { beta1: beta(0.9), beta2: beta(0.999), eps: eps(1e-8) },
  weightDecay: "coupled",
  update: ADAM_UPDATE,
});

/** `adamw`: torch.optim.AdamW (decoupled weight decay). */
export const adamwPlugin: OptimizerPlugin = defineOptimizer({
  name: "adamw",
  description: "AdamW (torch.optim.AdamW; decoupled weight decay): beta1, beta2, eps",
  slots: ["exp_avg", "exp_avg_sq"],
  hyper: { beta1: beta(0.9), beta2: beta(0.999), eps: eps(1e-8) },
  weightDecay: "decoupled",
  update: ADAM_UPDATE,
});

/** `lion`: as scaling_mlps' Lion (decoupled decay, sign update; WGSL sign(0) = 0, as torch). */
export const lionPlugin: OptimizerPlugin = defineOptimizer({
  name: "lion",
  description: "LION (Chen et al. 2023, as scaling_mlps): beta1, beta2",
  slots: ["exp_avg"],
  hyper: { beta1: beta(0.9), beta2: beta(0.99) },
  weightDecay: "decoupled",
  update: `
  p = p - lr * sign(hyper.beta1 * exp_avg + hyper.one_minus_beta1 * g);
  exp_avg = hyper.beta2 * exp_avg + hyper.one_minus_beta2 * g;`,
});

/** The Adam part of `noisy-adam`: EDM2's β = (0.9, 0.99), decoupled weight decay (§4.2). */
const noisyAdamUpdate = defineOptimizer({
  name: "noisy-adam",
  description:
    "Adam with Gaussian noise on the weights after each step (algorithms.md §4.2): beta1, beta2, eps, noise (σ/lr until noise_ref_steps, then ∝ 1/√t more), noise_params (matrices|all); recipe: the edm2 schedule",
  slots: ["exp_avg", "exp_avg_sq"],
  hyper: { beta1: beta(0.9), beta2: beta(0.99), eps: eps(1e-8) },
  weightDecay: "decoupled",
  update: ADAM_UPDATE,
  recipe: { schedule: "edm2", weight_decay: 0 },
});

/**
 * `noisy-adam`: Adam (decoupled weight decay), then θ ← θ + σ_t·ξ on the weight matrices, σ_t =
 * `noise`·lr_t/√max((t−1)/t_ref, 1) (plugins/optimizers/noise.ts); its recipe picks `edm2`.
 */
export const noisyAdamPlugin: OptimizerPlugin = {
  ...noisyAdamUpdate,
  defaults: {
    ...noisyAdamUpdate.defaults,
    noise: 0.1,
    noise_ref_steps: 0,
    noise_params: "matrices",
  },
  keys: {
    ...noisyAdamUpdate.keys,
    noise: { min: 0 },
    noise_ref_steps: { type: "int", min: 0 },
    noise_params: { choices: NOISE_TARGETS },
  },
  async create(ctx, config) {
    return [...await noisyAdamUpdate.create(ctx, config), ...await parameterNoise(ctx, config)];
  },
};

/** `lamb`: timm's Lamb (per-tensor trust ratio from a segmented norm pass). */
export const lambPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "lamb",
  description: "LAMB (timm's Lamb, per-tensor trust ratio): beta1, beta2, eps",
  defaults: { beta1: 0.9, beta2: 0.999, eps: 1e-6 },
  keys: { beta1: beta(0.9), beta2: beta(0.999), eps: eps(1e-6) },
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
  noisyAdamPlugin,
  samPlugin,
  ssamPlugin,
];
