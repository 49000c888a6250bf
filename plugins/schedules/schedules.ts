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

/** `cosine`: warmup then cosine decay to `min_lr` at the last step. */
export const cosineSchedule: SchedulePlugin = {
  kind: "schedule",
  name: "cosine",
  description: "linear warmup (warmup_steps) then cosine decay to min_lr",
  defaults: { min_lr: 0 },
  keys: { min_lr: { min: 0 } },
  lr(step, total, _perEpoch, config) {
    const lr = num(config, "lr");
    const min = num(config, "min_lr");
    return min + (lr - min) * 0.5 * (1 + Math.cos((Math.PI * step) / Math.max(1, total)));
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

/** Every built-in schedule. */
export const SCHEDULES: SchedulePlugin[] = [
  constantSchedule,
  cosineSchedule,
  sgdrSchedule,
  stepSchedule,
];
