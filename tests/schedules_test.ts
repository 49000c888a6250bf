import assert from "node:assert";
import {
  constantSchedule,
  cosineSchedule,
  edm2Schedule,
  edm2Steps,
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

Deno.test("schedules: cosine with cosine_epochs reaches min_lr after them and holds it (the numpy Mixer's)", () => {
  // The Mixer's run: 100 epochs, 2 of warmup, the cosine over 15 epochs, floor 1e-6 (§2.2); here
  // 10 steps per epoch, so the cosine spans 150 steps after the 20 of warmup.
  const config = { lr: 0.1, min_lr: 1e-6, cosine_epochs: 15, warmup_steps: 20 };
  const lrs = scheduledLrs(cosineSchedule, config, 1000, 10);
  close(lrs[0]!, Math.fround(0.1 / 21), "warmup step 0");
  close(lrs[20]!, Math.fround(0.1), "cosine start");
  const mid = 1e-6 + (0.1 - 1e-6) * 0.5 * (1 + Math.cos(Math.PI * 75 / 150));
  close(lrs[20 + 75]!, Math.fround(mid), "half way through the cosine");
  close(
    lrs[20 + 149]!,
    Math.fround(1e-6 + (0.1 - 1e-6) * 0.5 * (1 + Math.cos(Math.PI * 149 / 150))),
    "last cosine step",
  );
  for (const s of [170, 171, 500, 999]) close(lrs[s]!, Math.fround(1e-6), `floor at step ${s}`);
  // cosine_epochs 0 keeps the whole-run cosine.
  close(
    cosineSchedule.lr(40, 100, 10, { ...config, cosine_epochs: 0 }),
    1e-6 + (0.1 - 1e-6) * 0.5 * (1 + Math.cos(Math.PI * 40 / 100)),
    "cosine_epochs 0",
  );
});

Deno.test("schedules: edm2 is a linear warmup from 0, constant to t_ref, then lr/√(t/t_ref)", () => {
  const lr = 2e-3;
  // 1500 steps: t_warm = round(0.01·1500) = 15, t_ref = max(15, round(1500/15)) = 100.
  const config = { lr, warmup_steps: 0, ref_steps: 0, rampup_fraction: 0.01 };
  assert.deepStrictEqual(edm2Steps(config, 1500), { warmup: 15, ref: 100 });
  const lrs = scheduledLrs(edm2Schedule, config, 1500, 100);
  const expected: [number, number][] = [
    [0, 0], // EDM2 computes the lr before counting the step: exactly 0 at step 0
    [1, lr / 15],
    [7, lr * 7 / 15],
    [15, lr],
    [60, lr],
    [100, lr],
    [400, lr / 2], // √(400/100) = 2
    [900, lr / 3],
    [1499, lr / Math.sqrt(14.99)],
  ];
  for (const [s, v] of expected) close(lrs[s]!, Math.fround(v), `edm2 step ${s}`);
  // warmup_steps, when given, is t_warm; ref_steps, when given, is t_ref.
  const set = { ...config, warmup_steps: 4, ref_steps: 10 };
  assert.deepStrictEqual(edm2Steps(set, 1500), { warmup: 4, ref: 10 });
  close(edm2Schedule.lr(2, 1500, 100, set), lr / 2, "edm2 warmup_steps 4, step 2");
  close(edm2Schedule.lr(40, 1500, 100, set), lr / 2, "edm2 ref_steps 10, step 40");
  // rampup_fraction 0: no warmup; t_ref is never below 1 for a short run.
  const none = { ...config, rampup_fraction: 0 };
  assert.deepStrictEqual(edm2Steps(none, 7), { warmup: 0, ref: 1 });
  close(edm2Schedule.lr(0, 7, 7, none), lr, "edm2 without warmup at step 0");
  close(edm2Schedule.lr(4, 7, 7, none), lr / 2, "edm2 without warmup at step 4 (t_ref 1)");
});
