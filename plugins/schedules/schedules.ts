/**
 * The built-in learning-rate schedules. Each gives the lr of every optimizer step, computed once
 * on the CPU into the table the fused optimizer reads on the GPU, so any schedule costs nothing
 * per step. The trainer applies `warmup_steps` (linear from 0) before every schedule, which sees
 * the steps after it (core/train/build.ts `scheduledLrs`).
 */

import type { Config, SchedulePlugin } from "../../core/train/registry.ts";

function num(config: Config, key: string): number {
  const v = Number(config[key]);
  if (!Number.isFinite(v)) {
    throw new RangeError(`${key} must be a number, got ${JSON.stringify(config[key])}`);
  }
  return v;
}

/** `constant`. */
export const constantSchedule: SchedulePlugin = {
  kind: "schedule",
  name: "constant",
  description: "constant lr (after optional warmup_steps)",
  defaults: {},
  lr: (_step, _total, _perEpoch, config) => num(config, "lr"),
};

/**
 * `cosine`: cosine decay from lr to `min_lr` over the steps after warmup — over the whole run, or
 * with `cosine_epochs` > 0 over that many epochs, holding `min_lr` after them (the numpy Mixer's
 * warmup + "sharpening" cosine, algorithms.md §2.2, stepped per step rather than per epoch).
 */
export const cosineSchedule: SchedulePlugin = {
  kind: "schedule",
  name: "cosine",
  description:
    "linear warmup (warmup_steps) then cosine decay to min_lr, over cosine_epochs (0 = the whole run) then held",
  defaults: { min_lr: 0, cosine_epochs: 0 },
  keys: { min_lr: { min: 0 }, cosine_epochs: { min: 0 } },
  lr(step, total, perEpoch, config) {
    const lr = num(config, "lr");
    const min = num(config, "min_lr");
    // Absent (a config from before the key existed): the whole-run cosine.
    const epochs = config.cosine_epochs === undefined ? 0 : num(config, "cosine_epochs");
    const span = epochs > 0 ? Math.max(1, Math.round(epochs * perEpoch)) : Math.max(1, total);
    if (step >= span) return min;
    return min + (lr - min) * 0.5 * (1 + Math.cos((Math.PI * step) / span));
  },
};

/** `sgdr`: cosine with warm restarts (Loshchilov & Hutter), periods in epochs growing by t_mult. */
export const sgdrSchedule: SchedulePlugin = {
  kind: "schedule",
  name: "sgdr",
  description: "cosine with warm restarts: t0_epochs, t_mult, min_lr",
  defaults: { t0_epochs: 1, t_mult: 2, min_lr: 0 },
  keys: { t0_epochs: { min: 0, minExclusive: true }, t_mult: { min: 1 }, min_lr: { min: 0 } },
  lr(step, _total, perEpoch, config) {
    const lr = num(config, "lr");
    const min = num(config, "min_lr");
    const mult = num(config, "t_mult");
    let s = step;
    let period = Math.max(1, Math.round(num(config, "t0_epochs") * perEpoch));
    while (s >= period) {
      s -= period;
      period = Math.max(1, Math.round(period * mult));
    }
    return min + (lr - min) * 0.5 * (1 + Math.cos((Math.PI * s) / period));
  },
};

/** `step`: lr·gamma^⌊epoch/step_epochs⌋. */
export const stepSchedule: SchedulePlugin = {
  kind: "schedule",
  name: "step",
  description: "step decay: lr × gamma every step_epochs epochs",
  defaults: { step_epochs: 1, gamma: 0.1 },
  keys: { step_epochs: { type: "int", min: 1 }, gamma: { min: 0, minExclusive: true } },
  lr(step, _total, perEpoch, config) {
    const epoch = Math.floor(step / Math.max(1, perEpoch));
    return num(config, "lr") *
      num(config, "gamma") ** Math.floor(epoch / num(config, "step_epochs"));
  },
};

/** EDM2's warmup and reference steps of a run of `totalSteps` (see {@link edm2Schedule}). */
export function edm2Steps(config: Config, totalSteps: number): { warmup: number; ref: number } {
  const given = Number(config.warmup_steps ?? 0);
  const fraction = Number(config.rampup_fraction ?? 0.01);
  const warmup = given > 0
    ? given
    : fraction > 0
    ? Math.max(1, Math.round(fraction * totalSteps))
    : 0;
  const ref = Number(config.ref_steps ?? 0) > 0
    ? Number(config.ref_steps)
    : Math.max(warmup, Math.round(totalSteps / 15), 1);
  return { warmup, ref };
}

/**
 * `edm2`: the learning rate of EDM2 (Karras et al. 2024, algorithms.md §4.1), for step s = 0, 1, …
 * (the steps completed before it): lr · min(s / t_warm, 1) / √max(s / t_ref, 1) — a linear warmup
 * from 0, constant to t_ref, then 1/√t. t_warm is `warmup_steps`, or when that is 0
 * round(`rampup_fraction` · steps) (at least 1; 0 = no warmup); t_ref is `ref_steps`, or when
 * that is 0 max(t_warm, round(steps / 15)).
 */
export const edm2Schedule: SchedulePlugin = {
  kind: "schedule",
  name: "edm2",
  description:
    "EDM2: linear warmup from 0 (warmup_steps, else rampup_fraction of the run), constant to ref_steps (0 = run/15), then lr/√(t/ref_steps)",
  defaults: { ref_steps: 0, rampup_fraction: 0.01 },
  keys: {
    ref_steps: { type: "int", min: 0 },
    rampup_fraction: { min: 0, max: 1, maxExclusive: true },
  },
  handlesWarmup: true,
  lr(step, total, _perEpoch, config) {
    const { warmup, ref } = edm2Steps(config, total);
    const ramp = warmup > 0 ? Math.min(step / warmup, 1) : 1;
    return num(config, "lr") * ramp / Math.sqrt(Math.max(step / ref, 1));
  },
};

/** Every built-in schedule. */
export const SCHEDULES: SchedulePlugin[] = [
  constantSchedule,
  cosineSchedule,
  sgdrSchedule,
  stepSchedule,
  edm2Schedule,
];
