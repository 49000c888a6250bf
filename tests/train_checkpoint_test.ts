import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { testGpu } from "./helpers/gpu.ts";
import { runTorch } from "./helpers/torch.ts";

Deno.test("checkpoint: PyTorch's BottleneckMLP loads model.safetensors with strict=True and evaluates it as we do", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "synthetic",
      synthetic_features: 30,
      synthetic_classes: 6,
      synthetic_train: 480,
      synthetic_test: 77,
      synthetic_noise: 110,
      model: "bottleneck-mlp",
      arch: "B_2-Wi_12-X_3",
      batch_size: 32,
      epochs: 1,
      lr: 0.005,
      seed: 5,
    },
  }]);
  const outDir = await Deno.makeTempDir({ prefix: "torch-" });
  const result = await train({ gpu, kernels, registry, config, outDir });
  const data = await registry.get("dataset", "synthetic").load(config);
  const torch = await runTorch(new URL("./fixtures/torch/bottleneck_eval.py", import.meta.url), {
    checkpoint: join(outDir, "model.safetensors"),
    features: data.info.features,
    classes: data.info.classes,
    samples: Array.from(data.test.samples),
    labels: Array.from(data.test.labels),
    mean: data.mean[0],
    std: data.std[0],
  }, "bottleneck_eval.py") as { accuracy: number; loss: number };
  // 77 test samples: the last batch of 32 is partial, so this also checks the masked tail.
  assert.strictEqual(torch.accuracy.toFixed(6), result.test_accuracy.toFixed(6));
  assert.ok(
    Math.abs(torch.loss - result.test_loss) <= 1e-4 * (1 + torch.loss),
    `loss ${result.test_loss} vs PyTorch ${torch.loss}`,
  );
  assert.ok(result.test_accuracy > 0.5, `the run learned (accuracy ${result.test_accuracy})`);
  await Deno.remove(outDir, { recursive: true });
});
