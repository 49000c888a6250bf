/**
 * noisy-adam (algorithms.md §4.2): its GPU steps against a float64 implementation of the same
 * rule over 20 steps — without the noise, and with the noise reproduced from the Philox and
 * Box–Muller references — and its noise's std on the scheduled values (statistical bounds), with
 * biases untouched. That a resumed run continues the same noise is in tests/train_resume_test.ts.
 */

import assert from "node:assert";
import { checkOptimizer, type ReferenceElement } from "../core/train/check_optimizer.ts";
import { noisyAdamPlugin } from "../plugins/optimizers/optimizers.ts";
import { NOISE_STREAM, noiseStds } from "../plugins/optimizers/noise.ts";
import { edm2Schedule } from "../plugins/schedules/schedules.ts";
import { scheduledLrs } from "../core/train/build.ts";
import { createCounters } from "../core/gpu/counters.ts";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { segmentTable } from "../core/ops/optimizer.ts";
import type { OptimizerContext } from "../core/train/registry.ts";
import { normalFillRef } from "./reference/normal.ts";
import { testGpu } from "./helpers/gpu.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { runLayers } from "../core/cli/args.ts";

/** Adam with decoupled weight decay in float64 (as torch.optim.AdamW). */
function adamw(e: ReferenceElement) {
  const { beta1, beta2, eps } = e.hyper as { beta1: number; beta2: number; eps: number };
  const p = e.p * (1 - e.lr * e.wd);
  const m = beta1 * e.state.exp_avg! + (1 - beta1) * e.g;
  const v = beta2 * e.state.exp_avg_sq! + (1 - beta2) * e.g * e.g;
  const denom = Math.sqrt(v) / Math.sqrt(1 - beta2 ** e.t) + eps;
  return { p: p - e.lr * (m / (1 - beta1 ** e.t)) / denom, state: { exp_avg: m, exp_avg_sq: v } };
}

Deno.test("noisy-adam with noise 0: Adam (β2 0.99, decoupled decay) in float64 over 20 steps", async () => {
  const { kernels } = await testGpu();
  assert.strictEqual(noisyAdamPlugin.defaults.beta2, 0.99);
  const check = await checkOptimizer(kernels, noisyAdamPlugin, adamw, { config: { noise: 0 } });
  assert.ok(check.maxError < 1e-4, `max error ${check.maxError}`);
});

Deno.test("noisy-adam: GPU steps equal float64 Adam plus the reproduced noise over 20 steps", async () => {
  const { kernels } = await testGpu();
  const noise = 0.1;
  const ref = 8; // 8 steps of σ = noise·lr, then σ = noise·lr/√(s/8)
  const seed = 7; // checkOptimizer's default seed, which it gives the context
  const z = new Map<number, Float64Array>();
  /** The standard normal deviate of element i at step s, as the kernel draws it. */
  const deviate = (s: number, i: number) => {
    if (!z.has(s)) z.set(s, normalFillRef(512, { seed, stream: NOISE_STREAM, step: s }, 0, 1));
    return z.get(s)![i]!;
  };
  const noisy = (e: ReferenceElement) => {
    const r = adamw(e);
    // Weight matrices only (checkOptimizer's tensors are [37], [3, 43] and [7, 10]).
    if (e.shape.length < 2) return r;
    const s = e.t - 1;
    const sigma = noise * e.lr / Math.sqrt(Math.max(s / ref, 1));
    return { ...r, p: r.p + sigma * deviate(s, e.index) };
  };
  const config = { noise, noise_ref_steps: ref, beta1: 0.85 };
  const check = await checkOptimizer(kernels, noisyAdamPlugin, noisy, { config });
  // The noise is ~1e-3 a step against weights ~0.5: f32 Box–Muller (≤ 5e-6 of a deviate) is far
  // inside the tolerance; the check can fail: without the noise the reference is off.
  assert.ok(check.maxError < 1e-4, `max error ${check.maxError}`);
  await assert.rejects(
    checkOptimizer(kernels, noisyAdamPlugin, adamw, { config }),
    /optimizer "noisy-adam": after 20 steps params\[\d+\]/,
  );
  // noise_params "all" puts noise on the vector too.
  await checkOptimizer(kernels, noisyAdamPlugin, (e) => noisy({ ...e, shape: [1, 1] }), {
    config: { ...config, noise_params: "all" },
  });
});

Deno.test("noisy-adam: the noise has the scheduled std (a fraction of the lr, then ∝ 1/t under edm2), biases none", async () => {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("noisy-adam noise std");
  try {
    const k = kernels.withGpu(scope);
    // A weight matrix of 2^17 values and a bias after it; zero gradients, so Adam moves nothing
    // (m = v = 0) and every change is noise. Zero weights make the change exactly σ·z in f32.
    const rows = 256;
    const cols = 512;
    const matrix = rows * cols;
    const bias = { name: "fc.bias", shape: [cols], start: matrix, end: matrix + cols };
    const tensors = [
      { name: "fc.weight", shape: [rows, cols], start: 0, end: matrix, lrMult: 1, weightDecay: 0 },
      { ...bias, lrMult: 1, weightDecay: 0 },
    ];
    const n = matrix + cols;
    const lr = 2e-3;
    const total = 300; // edm2: t_warm = 3, t_ref = max(3, 300/15) = 20
    const config = { ...noisyAdamPlugin.defaults, lr, warmup_steps: 0, ref_steps: 0 };
    const lrs = scheduledLrs(edm2Schedule, { ...config, rampup_fraction: 0.01 }, total, total);
    const params = scope.storage("params", n * 4);
    const counters = createCounters(scope);
    const ctx: OptimizerContext = {
      kernels: k,
      params,
      grads: scope.storage("grads", n * 4),
      state: noisyAdamPlugin.slots.map((s) => scope.storage(s, n * 4)),
      segments: segmentTable(scope, tensors),
      segmentCount: tensors.length,
      n,
      counters,
      lrTable: scope.storage("lr table", lrs),
      lrs,
      tensors,
      seed: 99,
      gradNorm: scope.storage("grad norm", 16),
      gradScale: 1,
      maxGradNorm: 0,
    };
    const update = await noisyAdamPlugin.create(ctx, config);
    const noise = 0.1;
    // σ_s = noise·lr·min(s/3, 1)/max(s/20, 1): the lr's own 1/√ and the noise's 1/√ make 1/t.
    const expected: [number, number][] = [
      [0, 0],
      [2, noise * lr * 2 / 3],
      [10, noise * lr],
      [20, noise * lr],
      [80, noise * lr / 4],
      [299, noise * lr * 20 / 299],
    ];
    const stds = noiseStds(lrs, noise, 20);
    for (const [s, sigma] of expected) {
      assert.ok(Math.abs(stds[s]! - sigma) <= 1e-7 * sigma, `σ table at step ${s}: ${stds[s]}`);
      scope.write(params, new Float32Array(n));
      scope.write(counters, new Uint32Array([s]));
      submitDispatches(scope, update, `noisy-adam at step ${s}`);
      const p = await scope.readF32(params, n);
      const label = `noisy-adam step ${s}`;
      assert.ok(p.subarray(matrix).every((v) => v === 0), `${label}: the bias got noise`);
      let sum = 0;
      let sq = 0;
      for (let i = 0; i < matrix; i++) {
        sum += p[i]!;
        sq += p[i]! * p[i]!;
      }
      if (sigma === 0) {
        assert.strictEqual(sq, 0, `${label}: noise where σ = 0`);
        continue;
      }
      const mean = sum / matrix;
      const std = Math.sqrt(sq / matrix - mean * mean);
      // Standard errors of a normal sample: σ/√n for the mean, σ/√(2n) for the std.
      assert.ok(Math.abs(mean) < 5 * sigma / Math.sqrt(matrix), `${label}: mean ${mean}`);
      const bound = 5 * sigma / Math.sqrt(2 * matrix);
      assert.ok(
        Math.abs(std - sigma) < bound,
        `${label}: std ${std}, expected ${sigma} ± ${bound}`,
      );
    }
  } finally {
    scope.dispose();
  }
});

Deno.test("noisy-adam's recipe chooses the edm2 schedule and no weight decay, under the default preset too", () => {
  const registry = builtinRegistry();
  // `deno task train --optimizer noisy-adam` on a software adapter: the mnist-cpu preset, then
  // the flag; the optimizer's recipe sits below the preset, which sets neither key.
  const { layers } = runLayers(true, [], { optimizer: "noisy-adam" });
  const config = resolveConfig(registry, layers);
  assert.strictEqual(config.schedule, "edm2");
  assert.strictEqual(config.weight_decay, 0);
  assert.strictEqual(config.lr, 1e-3);
  assert.strictEqual(config.noise, 0.1);
  // A flag still wins over the recipe.
  const cosine = resolveConfig(registry, [{
    source: "flags",
    values: { optimizer: "noisy-adam", schedule: "cosine" },
  }]);
  assert.strictEqual(cosine.schedule, "cosine");
  assert.throws(
    () =>
      resolveConfig(registry, [{
        source: "flags",
        values: { optimizer: "noisy-adam", noise_params: "biases" },
      }]),
    /--noise-params must be one of "matrices", "all", got "biases"/,
  );
});
