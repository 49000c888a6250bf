import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train, type TrainEvents } from "../core/train/trainer.ts";
import { readSafetensors } from "../core/io/safetensors.ts";
import type { Config } from "../core/train/registry.ts";
import { testGpu } from "./helpers/gpu.ts";

const CONFIG = {
  dataset: "synthetic",
  synthetic_features: 24,
  synthetic_classes: 4,
  synthetic_train: 320,
  synthetic_test: 40,
  model: "mlp",
  widths: "16",
  activation: "relu",
  dropout: 0.2,
  optimizer: "adamw",
  lr: 0.01,
  batch_size: 16,
  epochs: 2,
  log_every: 4,
  steps_per_submit: 2,
  checkpoint_every: 0,
  seed: 11,
};

async function run(
  outDir: string,
  options: {
    stopAt?: (e: TrainEvents, stop: () => void) => TrainEvents;
    resume?: boolean;
    values?: Config;
    /**
     * Stops the run right after step N, mid-epoch: a checkpoint is due there (the loop writes it
     * before it looks at the signal), so the stop does not wait on a metric readback's timing.
     */
    stopAfterStep?: number;
  } = {},
) {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  // A value of undefined removes a key of CONFIG (another model's keys).
  const stopAfter = options.stopAfterStep;
  const values = Object.entries({
    ...CONFIG,
    ...options.values,
    ...(stopAfter ? { checkpoint_every: stopAfter } : {}),
  }).filter(([, v]) => v !== undefined);
  const config = resolveConfig(registry, [{ source: "test", values: Object.fromEntries(values) }]);
  const controller = new AbortController();
  const events = stopAfter
    ? { checkpoint: () => controller.abort() }
    : options.stopAt
    ? options.stopAt({}, () => controller.abort())
    : {};
  return await train({
    gpu,
    kernels,
    registry,
    config,
    outDir,
    events,
    signal: controller.signal,
    resumeFrom: options.resume ? join(outDir, "model.safetensors") : undefined,
  });
}

async function weights(dir: string): Promise<Record<string, number[]>> {
  const { tensors } = await readSafetensors(join(dir, "model.safetensors"));
  return Object.fromEntries(
    Object.entries(tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]),
  );
}

Deno.test("resume: stopped after epoch 1, then resumed, ends with weights identical to an uninterrupted run", async () => {
  const base = await Deno.makeTempDir({ prefix: "resume-" });
  const whole = join(base, "whole");
  const split = join(base, "split");
  const full = await run(whole);
  assert.strictEqual(full.status, "completed");
  const first = await run(split, {
    stopAt: (_e, stop) => ({ epoch: (r) => void (r.epoch === 1 && stop()) }),
  });
  assert.strictEqual(first.status, "interrupted");
  assert.strictEqual(first.steps, 20, "stopped at the end of epoch 1 (20 steps)");
  const resumed = await run(split, { resume: true });
  assert.strictEqual(resumed.status, "completed");
  assert.strictEqual(resumed.steps, full.steps);
  assert.deepStrictEqual(await weights(split), await weights(whole));
  assert.strictEqual(resumed.test_accuracy, full.test_accuracy);
  await Deno.remove(base, { recursive: true });
});

Deno.test("resume: stopped mid-epoch (with dropout), then resumed, ends with identical weights and optimizer state", async () => {
  const base = await Deno.makeTempDir({ prefix: "resume-mid-" });
  const whole = join(base, "whole");
  const split = join(base, "split");
  await run(whole);
  const first = await run(split, {
    stopAfterStep: 4,
  });
  assert.strictEqual(first.status, "interrupted");
  assert.strictEqual(first.steps, 4, "stopped mid-epoch 1, right after step 4");
  await run(split, { resume: true });
  const a = await weights(split);
  const b = await weights(whole);
  assert.ok(
    Object.keys(a).some((k) => k.startsWith("optim.")),
    "optimizer state is in the checkpoint",
  );
  assert.deepStrictEqual(a, b);
  await Deno.remove(base, { recursive: true });
});

Deno.test("resume: noisy-adam with EMAs stopped mid-epoch continues the same noise and averages: weights and EMAs identical to an uninterrupted run", async () => {
  const base = await Deno.makeTempDir({ prefix: "resume-noisy-" });
  const values = { optimizer: "noisy-adam", noise: 0.3, ema: "0.05,0.1", checkpoint_every: 0 };
  const whole = join(base, "whole");
  const split = join(base, "split");
  const full = await run(whole, { values });
  const first = await run(split, {
    values,
    stopAfterStep: 6,
  });
  assert.strictEqual(first.steps, 6, "stopped mid-epoch 1, right after step 6");
  const resumed = await run(split, { values, resume: true });
  assert.strictEqual(resumed.steps, full.steps);
  const resumedWeights = await weights(split);
  assert.ok("ema0.05.layers.0.weight" in resumedWeights, "the EMAs are in the checkpoint");
  assert.deepStrictEqual(resumedWeights, await weights(whole));
  assert.deepStrictEqual(resumed.evaluations, full.evaluations);
  // The check can fail: the noise moved the weights (noise 0 ends elsewhere).
  const quiet = join(base, "quiet");
  await run(quiet, { values: { ...values, noise: 0 } });
  assert.notDeepStrictEqual(await weights(quiet), await weights(whole));
  await Deno.remove(base, { recursive: true });
});

Deno.test("resume: bottleneck-mlp under drop_path and dropout stopped mid-epoch draws the same masks: identical weights", async () => {
  const base = await Deno.makeTempDir({ prefix: "resume-drop-path-" });
  const values = {
    model: "bottleneck-mlp",
    widths: undefined,
    activation: undefined,
    depth: 3,
    width: 8,
    expansion: 2,
    drop_path: 0.4,
    dropout: 0.1,
  };
  const whole = join(base, "whole");
  const split = join(base, "split");
  await run(whole, { values });
  const first = await run(split, {
    values,
    stopAfterStep: 6,
  });
  assert.strictEqual(first.steps, 6, "stopped mid-epoch 1, right after step 6");
  await run(split, { values, resume: true });
  assert.deepStrictEqual(await weights(split), await weights(whole));
  await Deno.remove(base, { recursive: true });
});

Deno.test("resume: ssam over noisy-adam with EMAs stopped mid-epoch: the base's and ssam's slots, the noise and the EMAs continue, identical to an uninterrupted run", async () => {
  const base = await Deno.makeTempDir({ prefix: "resume-ssam-noisy-" });
  const values = {
    optimizer: "ssam",
    sam_base: "noisy-adam",
    noise: 0.3,
    sparsity: 0.5,
    fisher_samples: 8,
    ema: "0.05,0.1",
  };
  const whole = join(base, "whole");
  const split = join(base, "split");
  const full = await run(whole, { values });
  assert.strictEqual(full.status, "completed");
  assert.deepStrictEqual(Object.keys(full.evaluations ?? {}), ["plain", "ema0.05", "ema0.1"]);
  const first = await run(split, {
    values,
    stopAfterStep: 6,
  });
  assert.strictEqual(first.steps, 6, "stopped mid-epoch 1, right after step 6");
  const resumed = await run(split, { values, resume: true });
  assert.strictEqual(resumed.steps, full.steps);
  const w = await weights(split);
  for (const slot of ["exp_avg_sq", "ssam_mask", "ssam_fisher"]) {
    assert.ok(`optim.head.weight.${slot}` in w, `the slot ${slot} is in the checkpoint`);
  }
  assert.ok("ema0.1.head.weight" in w, "the EMAs are in the checkpoint");
  assert.deepStrictEqual(w, await weights(whole));
  assert.deepStrictEqual(resumed.evaluations, full.evaluations);
  // The check can fail: the base's noise moved the weights.
  const quiet = join(base, "quiet");
  await run(quiet, { values: { ...values, noise: 0 } });
  assert.notDeepStrictEqual(await weights(quiet), await weights(whole));
  await Deno.remove(base, { recursive: true });
});
