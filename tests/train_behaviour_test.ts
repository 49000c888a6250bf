import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { parseLrMultipliers, resolveConfig } from "../core/train/config.ts";
import { DivergenceError, train, type TrainResult } from "../core/train/trainer.ts";
import { readSafetensors } from "../core/io/safetensors.ts";
import type { Config } from "../core/train/registry.ts";
import { testGpu } from "./helpers/gpu.ts";

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
  seed: 2,
};

async function run(
  values: Config,
  outDir?: string,
): Promise<{ result: TrainResult; outDir: string }> {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{ source: "test", values: { ...SYNTHETIC, ...values } }]);
  const dir = outDir ?? await Deno.makeTempDir({ prefix: "behaviour-" });
  return { result: await train({ gpu, kernels, registry, config, outDir: dir }), outDir: dir };
}

async function flatWeights(dir: string): Promise<number[]> {
  const { tensors } = await readSafetensors(join(dir, "model.safetensors"));
  return Object.keys(tensors).filter((k) => !k.startsWith("optim.")).sort().flatMap((k) =>
    Array.from(tensors[k]!.data as Float32Array)
  );
}

for (
  const [optimizer, lr] of [
    ["sgd", 0.05],
    ["adam", 0.01],
    ["adamw", 0.01],
    ["lion", 0.01],
    ["lamb", 0.05],
    ["noisy-adam", 0.01],
  ] as const
) {
  Deno.test(`optimizer ${optimizer} trains the synthetic task through the engine (flat buffers, fused update)`, async () => {
    const { result, outDir } = await run({
      optimizer,
      lr,
      max_grad_norm: optimizer === "sgd" ? 1 : 0,
    });
    assert.ok(result.test_accuracy >= 0.9, `${optimizer}: test accuracy ${result.test_accuracy}`);
    assert.ok(Number.isFinite(result.test_loss));
    await Deno.remove(outDir, { recursive: true });
  });
}

Deno.test("grad_accum: 2 micro-batches of 8 give the weights of one batch of 16 (same samples per step)", async () => {
  const a = await run({ batch_size: 16, grad_accum: 1, epochs: 1 });
  const b = await run({ batch_size: 8, grad_accum: 2, epochs: 1 });
  assert.strictEqual(a.result.steps, b.result.steps);
  const wa = await flatWeights(a.outDir);
  const wb = await flatWeights(b.outDir);
  let worst = 0;
  for (let i = 0; i < wa.length; i++) {
    worst = Math.max(worst, Math.abs(wa[i]! - wb[i]!) / (1e-3 + Math.abs(wa[i]!)));
  }
  // Only the summation order of the gradient differs: f32 rounding, amplified a little by Adam.
  assert.ok(worst < 2e-3, `largest relative weight difference ${worst}`);
  assert.notDeepStrictEqual(
    wa,
    await flatWeights((await run({ batch_size: 8, grad_accum: 1, epochs: 1 })).outDir),
  );
});

Deno.test("divergence: an exploding lr stops the run naming the step and keeps the last good checkpoint", async () => {
  const outDir = await Deno.makeTempDir({ prefix: "diverge-" });
  // Epoch 1 at lr 0.05, then ×1e12 (step schedule): epoch 2 explodes.
  const values = {
    optimizer: "sgd",
    lr: 0.05,
    schedule: "step",
    gamma: 1e12,
    step_epochs: 1,
    log_every: 4,
  };
  await assert.rejects(() => run(values, outDir), (e: Error) => {
    assert.ok(e instanceof DivergenceError, `got ${e}`);
    assert.match(e.message, /optimizer step \d+/);
    assert.match(e.message, /model\.safetensors/);
    return true;
  });
  const { metadata } = await readSafetensors(join(outDir, "model.safetensors"));
  assert.strictEqual(metadata?.epoch, "1", "the checkpoint is the end of epoch 1");
  assert.ok((await flatWeights(outDir)).every(Number.isFinite));
  await Deno.remove(outDir, { recursive: true });
});

Deno.test("lr_multipliers: a group at multiplier 0 is frozen, the rest trains", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{
    source: "test",
    values: { ...SYNTHETIC, epochs: 1, lr_multipliers: "layers.0=0" },
  }]);
  const outDir = await Deno.makeTempDir({ prefix: "groups-" });
  await train({ gpu, kernels, registry, config, outDir, events: {} });
  const after = await readSafetensors(join(outDir, "model.safetensors"));
  // The same run's initial weights: a run of 0 epochs is not allowed, so re-create them.
  const { ParamLayout } = await import("../core/graph/params.ts");
  const { Graph } = await import("../core/graph/graph.ts");
  const { seededRandom } = await import("../core/util/random.ts");
  const graph = new Graph(16);
  const data = await registry.get("dataset", "synthetic").load(config);
  registry.get("model", "mlp").build(graph, graph.input("x", 16), config, data.info);
  const layout = new ParamLayout(graph.params);
  const init = layout.initialValues(seededRandom(2));
  for (const s of layout.segments) {
    const trained = Array.from(after.tensors[s.param.name]!.data as Float32Array);
    const initial = Array.from(init.subarray(s.offset, s.offset + s.size));
    if (s.param.name.startsWith("layers.0")) {
      assert.deepStrictEqual(trained, initial, `${s.param.name} stays frozen`);
    } else assert.notDeepStrictEqual(trained, initial, `${s.param.name} trains`);
  }
  assert.throws(
    () => parseLrMultipliers("blocks=fast"),
    /lr_multipliers: "blocks=fast" is not prefix=multiplier/,
  );
  await Deno.remove(outDir, { recursive: true });
});
