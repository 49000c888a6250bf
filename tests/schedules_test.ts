import assert from "node:assert";
import {
  constantSchedule,
  cosineSchedule,
  sgdrSchedule,
  stepSchedule,
} from "../plugins/schedules/schedules.ts";
import { scheduledLrs } from "../core/train/build.ts";
import type { SchedulePlugin } from "../core/train/registry.ts";

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * (1 + Math.abs(b)), `${what}: ${a} vs ${b}`);

Deno.test("schedules: constant, warmup + cosine, SGDR and step against their closed forms", () => {
  const base = {
    lr: 0.1,
    warmup_steps: 0,
    min_lr: 0.001,
    t0_epochs: 1,
    t_mult: 2,
    step_epochs: 2,
    gamma: 0.5,
  };
  for (let s = 0; s < 50; s++) {
    close(constantSchedule.lr(s, 50, 10, base), 0.1, `constant step ${s}`);
  }
  // Cosine from lr at step 0 to min_lr at the last step's end.
  const total = 100;
  for (const s of [0, 1, 37, 50, 99]) {
    close(
      cosineSchedule.lr(s, total, 10, base),
      0.001 + (0.1 - 0.001) * 0.5 * (1 + Math.cos(Math.PI * s / total)),
      `cosine step ${s}`,
    );
  }
  // Warmup (the trainer's, before any schedule): a linear ramp over warmup_steps, then the
  // schedule over the steps after it.
  const warm = { ...base, warmup_steps: 4 };
  const lrs = scheduledLrs(cosineSchedule, warm, total, 10);
  for (let s = 0; s < 4; s++) close(lrs[s]!, Math.fround(0.1 * (s + 1) / 5), `warmup step ${s}`);
  close(lrs[4]!, Math.fround(0.1), "first step after warmup");
  close(
    lrs[50]!,
    Math.fround(0.001 + (0.1 - 0.001) * 0.5 * (1 + Math.cos(Math.PI * 46 / 96))),
    "cosine after warmup",
  );
  // A plugin schedule gets the same warmup, unless it handles warmup itself.
  const flat: SchedulePlugin = {
    kind: "schedule",
    name: "flat",
    description: "",
    defaults: {},
    lr: () => 0.5,
  };
  close(scheduledLrs(flat, warm, 10, 10)[1]!, Math.fround(0.1 * 2 / 5), "plugin schedule warmup");
  close(scheduledLrs({ ...flat, handlesWarmup: true }, warm, 10, 10)[1]!, 0.5, "handlesWarmup");
  assert.throws(
    () => scheduledLrs({ ...flat, lr: () => NaN }, base, 3, 1),
    /schedule "flat" gives lr NaN at step 0/,
  );
  // SGDR with 10 steps per epoch: periods 10, 20, 40 steps; restarts at 10 and 30.
  const perEpoch = 10;
  const sgdr = (s: number) => sgdrSchedule.lr(s, 200, perEpoch, base);
  const within = (s: number, period: number) =>
    0.001 + (0.1 - 0.001) * 0.5 * (1 + Math.cos(Math.PI * s / period));
  close(sgdr(0), 0.1, "sgdr start");
  close(sgdr(9), within(9, 10), "sgdr end of first period");
  close(sgdr(10), 0.1, "sgdr first restart");
  close(sgdr(25), within(15, 20), "sgdr inside second period");
  close(sgdr(30), 0.1, "sgdr second restart");
  close(sgdr(69), within(39, 40), "sgdr end of third period");
  // Step: ×gamma every step_epochs epochs.
  for (const [s, expected] of [[0, 0.1], [19, 0.1], [20, 0.05], [45, 0.025]] as const) {
    close(stepSchedule.lr(s, 100, perEpoch, base), expected, `step schedule step ${s}`);
  }
  assert.throws(
    () => constantSchedule.lr(0, 1, 1, { lr: "fast", warmup_steps: 0 }),
    /lr must be a number/,
  );
});
