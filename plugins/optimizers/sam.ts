/**
 * `sam` and `ssam`: sharpness-aware minimisation (Foret et al. 2021) over any one-pass base
 * optimizer, and its sparse variant (Mi et al. 2022), as optimizer plugins that bring their own
 * step (algorithms.md §3). The step is phases over the run's flat buffers, nothing read back:
 *
 *   pass at w → Σ(t·g)² on the GPU → w ← w + ε (w kept) → pass again at w + ε (same samples, same
 *   dropout) → w restored → the base optimizer's update with the second gradient,
 *
 * ε = ρ·t²·g/(‖t·g‖ + 1e-12), t = |w| with `adaptive` (ASAM), else 1, over all parameters jointly.
 * With `one_pass` (S²-SAM, Ji et al. 2024) the ascent direction is the previous step's gradient
 * (a state slot), so a step needs one forward/backward: w + ε(g_{t−1}) → pass → restore → update.
 *
 * `ssam` multiplies ε by a 0/1 mask with exactly ⌊(1−s)·P⌋ ones (s = `sparsity`, P trainable
 * values) found by a global top-k on the GPU (radix select): `ssam_mask` "fisher" (SSAM-F) scores
 * each value by the empirical Fisher Σ g² over `fisher_samples` per-sample gradients, recomputed
 * after the first step of every `update_freq`-th epoch (the first step runs with an empty mask,
 * as in Mi et al.); "dynamic" (SSAM-D) starts from a random mask and, at the same first steps,
 * keeps the live values with the largest death score and grows as many dead ones by growth score,
 * at the cosine death rate dr(e) = drop_rate·(1 + cos(π·e/epochs))/2. Where Mi et al.'s counts
 * would shrink the mask (a death count above the dead values), the death count is capped so the
 * mask keeps exactly ⌊(1−s)·P⌋ ones.
 *
 * @module
 */

import type { Config, OptimizerContext, OptimizerPlugin } from "../../core/train/registry.ts";
import type { KeySpec } from "../../core/train/keys.ts";
import {
  clearPhase,
  dispatchPhase,
  type Phase,
  type StepParts,
  whenPhase,
} from "../../core/train/step.ts";
import { addSquares, samNormSq, samPerturb } from "../../core/ops/sam.ts";
import { topkMask, type TopkMaskArgs } from "../../core/ops/topk_mask.ts";

/** The guard added to ‖t·g‖ (davda54/sam and S²-SAM use 1e-12; Mi et al. 1e-7). */
export const SAM_EPS = 1e-12;

/** The previous step's gradient (one-pass SAM). */
const PREV_GRAD = "sam_prev_grad";
/** SSAM's 0/1 perturbation mask. */
const MASK = "ssam_mask";
/** SSAM-F's Fisher score of the last mask update. */
const FISHER = "ssam_fisher";

const SAM_DEFAULTS = { sam_base: "adamw", rho: 0.05, adaptive: false, one_pass: false };
const SAM_KEYS: Record<string, Partial<KeySpec>> = {
  sam_base: { help: "the optimizer that takes the step at the perturbed gradient" },
  rho: { min: 0, help: "radius ρ of the perturbation" },
  adaptive: { help: "ASAM: scale the perturbation by |w|" },
  one_pass: { help: "S²-SAM: perturb along the previous step's gradient (one pass per step)" },
};

const STRATEGIES = ["gradient", "weight", "random"] as const;

const SSAM_DEFAULTS = {
  ...SAM_DEFAULTS,
  sparsity: 0.5,
  ssam_mask: "fisher",
  fisher_samples: 128,
  update_freq: 1,
  drop_rate: 0.5,
  drop_strategy: "gradient",
  growth_strategy: "random",
};
const SSAM_KEYS: Record<string, Partial<KeySpec>> = {
  ...SAM_KEYS,
  sparsity: { min: 0, max: 1, help: "fraction of values not perturbed" },
  ssam_mask: { choices: ["fisher", "dynamic"], help: "SSAM-F (Fisher) or SSAM-D (dynamic)" },
  fisher_samples: { type: "int", min: 1, help: "rows of per-sample gradients per Fisher score" },
  update_freq: { type: "int", min: 1, help: "epochs between mask updates" },
  drop_rate: { min: 0, max: 1, help: "SSAM-D death rate at the first epoch (cosine to 0)" },
  drop_strategy: { choices: STRATEGIES, help: "SSAM-D death score: |g|, |w| or random" },
  growth_strategy: { choices: STRATEGIES, help: "SSAM-D growth score: |g|, |w| or random" },
};

function samSlots(config: Config): string[] {
  return config.one_pass === true ? [PREV_GRAD] : [];
}

function ssamSlots(config: Config): string[] {
  return [MASK, ...(config.ssam_mask === "dynamic" ? [] : [FISHER]), ...samSlots(config)];
}

/** The base optimizer's update (every SAM step ends with it). */
function baseUpdate(name: string, ctx: OptimizerContext) {
  if (!ctx.base) {
    throw new RangeError(
      `optimizer "${name}" wraps a base optimizer (sam_base): build it in a run (checkOptimizer holds one-pass updates; tests/sam_test.ts holds SAM against float64)`,
    );
  }
  return ctx.base.update;
}

/** What SSAM adds to SAM's step: the mask ε is multiplied by, and when it is (re)made. */
interface PerturbMask {
  buffer: GPUBuffer;
  /** Before the first step's phases (SSAM-D's random mask). */
  init?: Phase;
  /** After the gradient the perturbation follows (SSAM-D's death and growth). */
  afterGradient?: Phase;
  /** After the step (SSAM-F's Fisher score and top-k). */
  afterStep?: Phase;
}

/** SAM's step over `parts`, with SSAM's mask when given. */
async function samStep(
  name: string,
  parts: StepParts,
  ctx: OptimizerContext,
  config: Config,
  slots: string[],
  mask?: PerturbMask,
): Promise<Phase[]> {
  const { kernels, n } = ctx;
  const gpu = kernels.gpu;
  const adaptive = config.adaptive === true;
  const onePass = config.one_pass === true;
  const prev = onePass ? ctx.state[slots.indexOf(PREV_GRAD)] : undefined;
  // The ascent direction: this step's gradient, or the previous step's (one pass).
  const v = prev ?? ctx.grads;
  const normSq = gpu.storage(`${name} ‖t·g‖²`, 16);
  const backup = gpu.storage(`${name} w before the perturbation`, n * 4);
  const norm = dispatchPhase(
    "‖t·g‖²",
    await samNormSq(kernels, { w: ctx.params, v, out: normSq, n, adaptive, label: `${name} norm` }),
  );
  const perturb = dispatchPhase("w += ε", [
    await samPerturb(kernels, {
      w: ctx.params,
      v,
      normSq,
      backup,
      mask: mask?.buffer,
      n,
      rho: Number(config.rho),
      eps: SAM_EPS,
      adaptive,
      label: `${name} perturb`,
    }),
  ]);
  const copy = (label: string, from: GPUBuffer, to: GPUBuffer): Phase => ({
    kind: "copy",
    label,
    from,
    fromOffset: 0,
    to,
    toOffset: 0,
    size: n * 4,
  });
  const restore = copy("w restored", backup, ctx.params);
  // Clipping reads Σg² of the gradient the update takes: the one at w + ε.
  const update = [...(parts.clipping ? [parts.gradNormSq] : []), parts.update, parts.advanceStep];
  const init = mask?.init ? [mask.init] : [];
  const afterGradient = mask?.afterGradient ? [mask.afterGradient] : [];
  const afterStep = mask?.afterStep ? [mask.afterStep] : [];
  baseUpdate(name, ctx);
  if (prev) {
    return [
      ...init,
      parts.clearGrads,
      norm,
      perturb,
      parts.pass(),
      ...afterGradient,
      restore,
      copy("keep g for the next step", ctx.grads, prev),
      ...update,
      ...afterStep,
    ];
  }
  return [
    ...init,
    parts.clearGrads,
    parts.pass(),
    norm,
    perturb,
    ...afterGradient,
    parts.clearGrads,
    parts.pass({ again: true, metrics: false }),
    restore,
    ...update,
    ...afterStep,
  ];
}

/** The death count of each epoch: ⌈L·dr(e)⌉ as Mi et al. round it, capped at the dead values. */
export function ssamDeaths(
  parameters: number,
  live: number,
  dropRate: number,
  epochs: number,
): number[] {
  return Array.from({ length: Math.max(1, epochs) }, (_, e) => {
    const dr = dropRate * (1 + Math.cos((Math.PI * e) / epochs)) / 2;
    return Math.min(live - Math.floor(live * (1 - dr)), parameters - live);
  });
}

/** The values SSAM perturbs: ⌊(1 − s)·P⌋ (as Mi et al.'s `int(P·(1 − s))`). */
export function ssamLive(parameters: number, sparsity: number): number {
  return Math.floor(parameters * (1 - sparsity));
}

/** SSAM's mask and the phases that make it. */
async function ssamMask(
  parts: StepParts,
  ctx: OptimizerContext,
  config: Config,
  slots: string[],
): Promise<PerturbMask> {
  const { kernels, n } = ctx;
  const mask = ctx.state[slots.indexOf(MASK)]!;
  const parameters = ctx.parameters ?? n;
  const live = ssamLive(parameters, Number(config.sparsity));
  const every = Number(config.update_freq);
  const due = (at: { epoch: number; stepInEpoch: number }) =>
    at.stepInEpoch === 0 && at.epoch % every === 0;
  const seed = Number(config.seed ?? 0);
  const common = {
    n,
    segments: ctx.segments,
    segmentCount: ctx.segmentCount,
    counters: ctx.counters,
    seed,
  };
  if (config.ssam_mask !== "dynamic") {
    const fisher = ctx.state[slots.indexOf(FISHER)]!;
    const rows = await parts.sampleGradients(Number(config.fisher_samples), [
      await addSquares(kernels, { g: ctx.grads, sums: fisher, n, label: "fisher += g²" }),
    ]);
    const top = await topkMask(kernels, {
      ...common,
      score: "value",
      values: fisher,
      candidates: "all",
      out: mask,
      counts: [live],
      label: "ssam fisher top-k",
    });
    return {
      buffer: mask,
      afterStep: whenPhase("ssam fisher mask", due, [
        clearPhase("fisher = 0", fisher),
        rows,
        dispatchPhase("mask = top-k of fisher", top),
      ]),
    };
  }
  const keep = kernels.gpu.storage("ssam mask after death", n * 4);
  const deaths = ssamDeaths(parameters, live, Number(config.drop_rate), parts.epochs);
  const score = (strategy: unknown): Pick<TopkMaskArgs, "score" | "values"> =>
    strategy === "random"
      ? { score: "random" }
      : { score: "abs", values: strategy === "weight" ? ctx.params : ctx.grads };
  const first = await topkMask(kernels, {
    ...common,
    score: "random",
    candidates: "all",
    out: mask,
    counts: [live],
    stream: 0x55a1,
    label: "ssam random mask",
  });
  const death = await topkMask(kernels, {
    ...common,
    ...score(config.drop_strategy),
    candidates: "live",
    filter: mask,
    out: keep,
    counts: deaths.map((d) => live - d),
    stepsPerEpoch: parts.stepsPerEpoch,
    stream: 0x55a2,
    label: "ssam death",
  });
  const growth = await topkMask(kernels, {
    ...common,
    ...score(config.growth_strategy),
    candidates: "dead",
    filter: mask,
    out: keep,
    or: true,
    counts: deaths,
    stepsPerEpoch: parts.stepsPerEpoch,
    stream: 0x55a3,
    label: "ssam growth",
  });
  return {
    buffer: mask,
    init: whenPhase("ssam first mask", (at) => at.step === 0, [
      dispatchPhase("mask = random top-k", first),
    ]),
    afterGradient: whenPhase("ssam death and growth", due, [
      dispatchPhase("keep = top live, then grow dead", [...death, ...growth]),
      {
        kind: "copy",
        label: "mask = keep",
        from: keep,
        fromOffset: 0,
        to: mask,
        toOffset: 0,
        size: n * 4,
      },
    ]),
  };
}

/** `sam`: SAM / ASAM / one-pass SAM over `sam_base`. */
export const samPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "sam",
  description:
    "SAM (Foret et al. 2021) over sam_base (default adamw, its keys apply): rho, adaptive (ASAM), one_pass (S²-SAM)",
  defaults: SAM_DEFAULTS,
  keys: SAM_KEYS,
  wraps: "sam_base",
  slots: [PREV_GRAD],
  slotsFor: samSlots,
  create: (ctx) => Promise.resolve(baseUpdate("sam", ctx)),
  step: (parts, ctx, config) => samStep("sam", parts, ctx, config, samSlots(config)),
};

/** `ssam`: sparse SAM with a Fisher (SSAM-F) or dynamic (SSAM-D) mask. */
export const ssamPlugin: OptimizerPlugin = {
  kind: "optimizer",
  name: "ssam",
  description:
    "sparse SAM (Mi et al. 2022) over sam_base: sparsity, ssam_mask fisher|dynamic, fisher_samples, update_freq, drop_rate; and sam's keys",
  defaults: SSAM_DEFAULTS,
  keys: SSAM_KEYS,
  wraps: "sam_base",
  slots: [MASK, FISHER, PREV_GRAD],
  slotsFor: ssamSlots,
  create: (ctx) => Promise.resolve(baseUpdate("ssam", ctx)),
  async step(parts, ctx, config) {
    const slots = ssamSlots(config);
    return samStep("ssam", parts, ctx, config, slots, await ssamMask(parts, ctx, config, slots));
  },
};
