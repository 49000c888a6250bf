import assert from "node:assert";
import { GLOBAL_MICRO_STEP } from "../core/gpu/counters.ts";
import { AUGMENT_STREAM } from "../core/ops/gather.ts";
import { buildRun } from "../core/train/build.ts";
import { resolveConfig } from "../core/train/config.ts";
import { epochPermutation } from "../core/train/data.ts";
import { makeEvaluator } from "../core/train/evaluator.ts";
import { buildStep } from "../core/train/recipe.ts";
import type { DatasetSplits } from "../core/train/registry.ts";
import { encodeSteps } from "../core/train/step.ts";
import { seededRandom } from "../core/util/random.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";
import { randomImages } from "./helpers/data_files.ts";
import { gatherRef } from "./reference/gather.ts";

Deno.test("augmentation: on in the training step's gather, off in evaluation", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const [c, h, w] = [2, 6, 5];
  const d = c * h * w;
  const train = randomImages(40, d, 3, 11);
  const test = randomImages(19, d, 3, 12);
  const dataset: DatasetSplits = {
    info: { features: d, classes: 3, image: { channels: c, height: h, width: w } },
    train: { samples: train.images, labels: train.labels, count: 40 },
    test: { samples: test.images, labels: test.labels, count: 19 },
    mean: [0.4, 0.5],
    std: [0.2, 0.3],
  };
  const seed = 21;
  const batch = 8;
  const config = resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "idx",
      model: "mlp",
      widths: "4",
      batch_size: batch,
      epochs: 1,
      seed,
      crop_padding: 2,
      hflip: 1,
      crop_scale: "0.5,1",
    },
  }]);
  const run = await buildRun({ gpu, kernels, registry, config, dataset });
  try {
    const step = await buildStep(run);
    const order = epochPermutation(run.data.fitCount, seed, 0, seededRandom);
    run.gpu.write(step.epochIndices, order);
    const encoder = gpu.device.createCommandEncoder();
    encodeSteps(encoder, step.phases, 1);
    gpu.submit([encoder.finish()]);
    const x = await gpu.readF32(run.plan.x, batch * d);
    const base = {
      data: train.images,
      labels: train.labels,
      indices: order,
      indexCount: 40,
      start: 0,
      batch,
      features: d,
      mean: dataset.mean,
      std: dataset.std,
    };
    const augment = {
      channels: c,
      height: h,
      width: w,
      padding: 2,
      flip: 1,
      resized: { scale: [0.5, 1] as const, ratio: [3 / 4, 4 / 3] as const },
      seed,
      stream: AUGMENT_STREAM,
      step: 0,
    };
    assert.strictEqual(run.data.augment?.counterIndex, GLOBAL_MICRO_STEP);
    assertClose(x, gatherRef({ ...base, augment }).x, {
      atol: 2e-5,
      rtol: 1e-5,
      label: "training batch",
    });
    const plain = gatherRef(base).x;
    assert.ok(x.some((v, i) => Math.abs(v - plain[i]!) > 1e-3), "the training batch is augmented");
    // The evaluator's last batch (test rows 16..18, the rest masked) is not augmented.
    const evaluate = await makeEvaluator({
      gpu: run.gpu,
      kernels: run.kernels,
      plan: run.plan,
      batch,
      dataset,
      split: run.data.test,
      name: "test",
      first: 0,
      count: 19,
    });
    await evaluate!();
    const last = gatherRef({
      ...base,
      data: test.images,
      labels: test.labels,
      indices: Uint32Array.from({ length: 19 }, (_, i) => i),
      indexCount: 19,
      start: 16,
    });
    assertClose(await gpu.readF32(run.plan.x, batch * d), last.x, {
      atol: 2e-6,
      rtol: 1e-6,
      label: "evaluation batch",
    });
  } finally {
    run.dispose();
  }
});
