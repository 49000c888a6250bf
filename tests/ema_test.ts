/**
 * Power-function EMAs (core/train/ema.ts, wgsl/ema.wgsl): γ from σ_rel as EDM2 derives it, the
 * GPU update over 20 steps against the closed form of the average it must equal, the keys'
 * errors, and through the trainer: every EMA evaluated beside the plain weights, `eval_weights`
 * choosing the reported one, the averages in the checkpoint, and training unchanged by them.
 */

import assert from "node:assert";
import { join } from "node:path";
import { createCounters } from "../core/gpu/counters.ts";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { emaUpdate } from "../core/ops/ema.ts";
import {
  emaTable,
  evalWeightsOf,
  gammaOf,
  MAX_SIGMA_REL,
  parseEma,
  sigmaRelOf,
} from "../core/train/ema.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { readSafetensors } from "../core/io/safetensors.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";

/**
 * The closed form: after steps 1..t the power-function EMA is Σ_τ θ_τ·(τ^{γ+1} − (τ−1)^{γ+1}) /
 * t^{γ+1} (the product of β_j = ((j−1)/j)^{γ+1} over j > τ is (τ/t)^{γ+1}).
 */
function closedForm(thetas: Float32Array[], gamma: number): Float64Array {
  const t = thetas.length;
  const out = new Float64Array(thetas[0]!.length);
  thetas.forEach((theta, k) => {
    const tau = k + 1;
    const w = (tau ** (gamma + 1) - (tau - 1) ** (gamma + 1)) / t ** (gamma + 1);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + w * theta[i]!;
  });
  return out;
}

Deno.test("ema: γ of σ_rel is EDM2's (0.05 → 16.97, 0.10 → 6.94), the largest root of its cubic", () => {
  for (const [sigma, gamma] of [[0.05, 16.97], [0.1, 6.94]] as const) {
    const g = gammaOf(sigma);
    assert.ok(Math.abs(g - gamma) < 0.005, `γ of σ_rel ${sigma} is ${g}, EDM2 gives ${gamma}`);
    assert.ok(Math.abs(sigmaRelOf(g) - sigma) < 1e-12, `σ_rel(γ(${sigma})) = ${sigmaRelOf(g)}`);
    const s2 = sigma ** -2;
    const cubic = g ** 3 + 7 * g ** 2 + (16 - s2) * g + (12 - s2);
    assert.ok(Math.abs(cubic) < 1e-9 * s2 * g, `cubic at γ = ${g}: ${cubic}`);
  }
  // The table: 1 − β_t with β_1 = 0, and 1 − (1 − 1/t)^{γ+1} after.
  const table = emaTable(6.94, 50);
  assert.strictEqual(table[1], 1);
  assert.strictEqual(table[40], Math.fround(1 - (1 - 1 / 40) ** 7.94));
  assert.throws(() => gammaOf(MAX_SIGMA_REL), /σ_rel .* must be in \(0, 0\.2887\)/);
});

Deno.test("ema_update over 20 steps equals the closed-form power-function average", async () => {
  const { gpu, kernels } = await testGpu();
  const n = 1001;
  const steps = 20;
  for (const sigma of [0.05, 0.1, 0.25]) {
    const gamma = gammaOf(sigma);
    const weights = gpu.storage("ema weights", n * 4);
    // Poisoned: β_1 = 0 must make the first step set the average, whatever it held.
    const ema = poisoned(gpu, "ema", n);
    const counters = createCounters(gpu);
    const table = gpu.storage("ema table", emaTable(gamma, steps));
    const update = await emaUpdate(kernels, { weights, ema, n, counters, table });
    const thetas: Float32Array[] = [];
    for (let t = 1; t <= steps; t++) {
      const theta = uniformF32(n, 100 * t + 1, -2, 2);
      thetas.push(theta);
      gpu.write(weights, theta);
      gpu.write(counters, new Uint32Array([t]));
      submitDispatches(gpu, [update], `ema step ${t}`);
      if (t === 1) {
        assert.deepStrictEqual(await gpu.readF32(ema, n), theta, "after step 1 the EMA is θ_1");
      }
    }
    const got = await gpu.readF32(ema, n);
    // 20 f32 updates of values ≤ 2: a few ulps each.
    assertClose(got, closedForm(thetas, gamma), {
      atol: 2e-6,
      rtol: 1e-5,
      label: `ema σ_rel ${sigma} after ${steps} steps`,
    });
    // The check can fail: the average is not the last weights.
    assert.ok(got.some((v, i) => Math.abs(v - thetas[steps - 1]![i]!) > 0.1));
    for (const b of [weights, ema, counters, table]) b.destroy();
  }
});

Deno.test("ema keys: bad σ_rel values and unknown eval_weights are errors naming the flag", () => {
  assert.deepStrictEqual(parseEma(""), []);
  assert.deepStrictEqual(parseEma("0.05,0.10"), [0.05, 0.1]);
  assert.throws(() => parseEma("0.05,0.5"), /--ema takes σ_rel values in \(0, 0\.2887\).*"0\.5"/);
  assert.throws(() => parseEma("0.05,"), /--ema takes σ_rel values/);
  assert.throws(() => parseEma("0.1,0.10"), /--ema lists a σ_rel twice/);
  assert.strictEqual(evalWeightsOf("ema0.10", [0.05, 0.1]), "ema0.1");
  assert.strictEqual(evalWeightsOf("plain", []), "plain");
  assert.throws(
    () => evalWeightsOf("ema0.2", [0.05, 0.1]),
    /--eval-weights "ema0\.2" names no weights of this run: known are "plain", "ema0\.05", "ema0\.1"/,
  );
  assert.throws(() => evalWeightsOf("ema0.05", []), /add EMAs with --ema 0\.05,0\.10/);
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{ source: "flags", values: { ema: "0.05,0.1" } }]);
  assert.strictEqual(config.ema, "0.05,0.1");
});

const SYNTHETIC = {
  dataset: "synthetic",
  synthetic_features: 16,
  synthetic_classes: 4,
  synthetic_train: 256,
  synthetic_test: 64,
  model: "mlp",
  widths: "16",
  batch_size: 16,
  epochs: 2,
  lr: 0.01,
  seed: 5,
};

async function trainSynthetic(values: Record<string, unknown>) {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{ source: "test", values: { ...SYNTHETIC, ...values } }]);
  const outDir = await Deno.makeTempDir({ prefix: "ema-" });
  const result = await train({ gpu, kernels, registry, config, outDir });
  const { tensors, metadata } = await readSafetensors(join(outDir, "model.safetensors"));
  await Deno.remove(outDir, { recursive: true });
  return { result, tensors, metadata };
}

Deno.test("training with EMAs: each evaluated beside the plain weights, eval_weights picks the reported one, checkpointed, training unchanged", async () => {
  const plain = await trainSynthetic({});
  const withEma = await trainSynthetic({ ema: "0.05,0.1", eval_weights: "ema0.10" });
  const r = withEma.result;
  assert.deepStrictEqual(Object.keys(r.evaluations ?? {}), ["plain", "ema0.05", "ema0.1"]);
  assert.strictEqual(r.weights, "ema0.1");
  assert.strictEqual(r.test_accuracy, r.evaluations!["ema0.1"]!.test_accuracy);
  assert.strictEqual(r.test_loss, r.evaluations!["ema0.1"]!.test_loss);
  // The EMAs neither change training nor the weights left after evaluating them.
  assert.strictEqual(r.evaluations!.plain!.test_accuracy, plain.result.test_accuracy);
  assert.strictEqual(r.evaluations!.plain!.test_loss, plain.result.test_loss);
  for (const [name, t] of Object.entries(plain.tensors)) {
    assert.deepStrictEqual(withEma.tensors[name]!.data, t.data, `${name} differs with EMAs on`);
  }
  assert.strictEqual(withEma.metadata?.ema, JSON.stringify(["ema0.05", "ema0.1"]));
  for (const name of ["ema0.05", "ema0.1"]) {
    const average = withEma.tensors[`${name}.layers.0.weight`];
    assert.ok(average, `${name}.layers.0.weight is in the checkpoint`);
    const w = plain.tensors["layers.0.weight"]!.data as Float32Array;
    const a = average.data as Float32Array;
    // An average of the weights along the run: close to the last ones, not equal to them.
    assert.ok(a.some((v, i) => v !== w[i]), `${name} equals the last weights`);
    assert.ok(a.every((v, i) => Math.abs(v - w[i]!) < 0.5), `${name} is far from the weights`);
  }
  assert.ok(!("ema0.05.layers.0.weight" in plain.tensors));
  assert.strictEqual(plain.result.evaluations, undefined);
});
