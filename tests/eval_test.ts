/**
 * Evaluation (issue 19): FGSM on a linear model against its closed form in float64; on a trained
 * MLP FGSM at ε = 0 is the clean evaluation, the clean evaluation is the trainer's, PGD is at least
 * as strong as FGSM, transfer from a model to itself is the white-box attack, TTA without
 * augmentation is plain evaluation, and f16 agrees with f32; the metrics beyond accuracy against
 * direct definitions. The kernels themselves are checked in tests/eval_kernels_test.ts.
 */

import assert from "node:assert";
import { join } from "node:path";
import { linear } from "../core/graph/nn.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { forwardFlops } from "../core/graph/flops.ts";
import { evaluateRun, type RunModel } from "../core/eval/evaluate.ts";
import { loadNet, readWeights } from "../core/eval/model.ts";
import { makeEvalSuite } from "../core/eval/suite.ts";
import { parseTta, ttaViews } from "../core/eval/views.ts";
import { auroc, bitsPerToken, classMetrics, macroF1 } from "../core/eval/metrics.ts";
import { modelGraph } from "../core/train/build.ts";
import { resolveConfig } from "../core/train/config.ts";
import { hostSplit, uploadSplit } from "../core/train/data.ts";
import type { Config, DatasetSplits, ModelPlugin, Registry } from "../core/train/registry.ts";
import { train } from "../core/train/trainer.ts";
import { seededRandom } from "../core/util/random.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { learnableImages, randomImages } from "./helpers/data_files.ts";
import { testGpu } from "./helpers/gpu.ts";

/** A linear classifier x·Wᵀ + b, whose input gradient has a closed form. */
const linearModel: ModelPlugin = {
  kind: "model",
  name: "linear",
  description: "x·Wᵀ + b (test model)",
  defaults: {},
  build: (g, input, _config, info) => linear(g, input, "head", { out: info.classes }),
};

function registry(): Registry {
  const r = builtinRegistry();
  r.register(linearModel, "tests/eval_test.ts");
  return r;
}

const [C, H, W] = [2, 4, 5];
const D = C * H * W;

function imageDataset(
  images: { train: ReturnType<typeof randomImages>; test: ReturnType<typeof randomImages> },
  classes: number,
): DatasetSplits {
  return {
    info: { features: D, classes, image: { channels: C, height: H, width: W } },
    train: {
      samples: images.train.images,
      labels: images.train.labels,
      count: images.train.labels.length,
    },
    test: {
      samples: images.test.images,
      labels: images.test.labels,
      count: images.test.labels.length,
    },
    mean: [0.4, 0.5],
    std: [0.2, 0.3],
  };
}

const NO_ATTACKS = { fgsm: [], pgd: [], pgdSteps: 5, pgdStepRatio: 0.5, seed: 3 };

/**
 * FGSM on x·Wᵀ + b in float64: ∇ₓCE = Wᵀ(softmax(z) − onehot(y)) in the normalised input, whose
 * sign is the pixel gradient's (the std is positive); x_adv = clip(x + ε·sign(∇), 0, 1).
 */
function fgsmLinearRef(
  data: DatasetSplits,
  weight: Float32Array,
  bias: Float32Array,
  eps: number,
): { accuracy: number; loss: number } {
  const { classes, features } = data.info;
  const plane = features / data.mean.length;
  const norm = (v: number, j: number) => {
    const s = Math.floor(j / plane);
    return (v - data.mean[s]!) / data.std[s]!;
  };
  const logits = (px: Float64Array) =>
    Array.from({ length: classes }, (_, c) => {
      let z = bias[c]!;
      for (let j = 0; j < features; j++) z += weight[c * features + j]! * norm(px[j]!, j);
      return z;
    });
  const softmax = (z: number[]) => {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return { p: e.map((v) => v / s), logSum: m + Math.log(s) };
  };
  let correct = 0;
  let loss = 0;
  const n = data.test.count;
  for (let i = 0; i < n; i++) {
    const y = data.test.labels[i]!;
    const px = Float64Array.from(
      { length: features },
      (_, j) => (data.test.samples[i * features + j]!) / 255,
    );
    const { p } = softmax(logits(px));
    const adv = px.map((v, j) => {
      let g = 0;
      for (let c = 0; c < classes; c++) {
        g += weight[c * features + j]! * (p[c]! - (c === y ? 1 : 0));
      }
      return Math.min(1, Math.max(0, v + eps * Math.sign(g)));
    });
    const z = logits(adv);
    loss += softmax(z).logSum - z[y]!;
    // argmax, ties to the first (as the kernels count).
    if (z.indexOf(Math.max(...z)) === y) correct++;
  }
  return { accuracy: correct / n, loss: loss / n };
}

Deno.test("eval: FGSM on a linear model equals its closed form; at ε = 0 it is the clean evaluation", async () => {
  const { gpu, kernels } = await testGpu();
  const reg = registry();
  const classes = 3;
  const data = imageDataset({
    train: randomImages(8, D, classes, 1),
    test: randomImages(37, D, classes, 2),
  }, classes);
  const config = resolveConfig(reg, [{
    source: "test",
    values: { dataset: "idx", model: "linear", batch_size: 8, epochs: 1 },
  }]);
  // Random weights of a scale that leaves the clean accuracy away from 0 and 1.
  const { graph } = await modelGraph(reg, config, data.info, 1);
  const layout = new ParamLayout(graph.params, 1, () => false);
  const random = seededRandom(5);
  const values = Float32Array.from({ length: layout.total }, () => 0.15 * (2 * random() - 1));
  const seg = (name: string) => layout.segments.find((s) => s.param.name === name)!;
  const weight = values.subarray(
    seg("head.weight").offset,
    seg("head.weight").offset + classes * D,
  );
  const bias = values.subarray(seg("head.bias").offset, seg("head.bias").offset + classes);
  const epsList = [0, 0.02, 0.05, 0.15, 0.3];
  const report = await evaluateRun({
    gpu,
    kernels,
    registry: reg,
    target: { config, weights: { layout, values }, name: "linear" },
    dataset: data,
    batch: 8,
    precision: "f32",
    attacks: { ...NO_ATTACKS, fgsm: epsList },
    tta: [],
    ttaShift: 1,
  });
  for (const [i, eps] of epsList.entries()) {
    const ref = fgsmLinearRef(data, weight, bias, eps);
    const got = report.fgsm[i]!;
    assert.strictEqual(got.eps, eps);
    assert.strictEqual(got.accuracy, ref.accuracy, `FGSM ε=${eps} accuracy`);
    assert.ok(
      Math.abs(got.loss - ref.loss) <= 1e-5 + 1e-4 * ref.loss,
      `FGSM ε=${eps} loss ${got.loss} vs ${ref.loss}`,
    );
  }
  assert.strictEqual(report.fgsm[0]!.accuracy, report.test_accuracy);
  assert.strictEqual(report.fgsm[0]!.loss, report.test_loss);
  assert.ok(report.fgsm.at(-1)!.accuracy < report.test_accuracy, "the attack lowers accuracy");
  assert.strictEqual(report.params, classes * D + classes);
});

/** A small MLP trained on learnable images, its weights read back from the checkpoint. */
async function trainedMlp(precision: "f32" | "f16" = "f32") {
  const { gpu, kernels } = await testGpu();
  const reg = registry();
  const classes = 4;
  const data = imageDataset({
    train: learnableImages(240, [C, H, W], classes, 7),
    test: learnableImages(53, [C, H, W], classes, 8),
  }, classes);
  const config: Config = resolveConfig(reg, [{
    source: "test",
    values: {
      dataset: "idx",
      model: "mlp",
      widths: "24",
      batch_size: 16,
      epochs: 3,
      lr: 0.01,
      optimizer: "adamw",
      precision,
      seed: 4,
      ema: "0.1",
    },
  }]);
  const outDir = await Deno.makeTempDir({ prefix: "eval-" });
  try {
    const result = await train({ gpu, kernels, registry: reg, config, outDir, dataset: data });
    const path = join(outDir, "model.safetensors");
    const weights = await readWeights(path, reg, config, data.info);
    const ema = await readWeights(path, reg, config, data.info, "ema0.1");
    return {
      gpu,
      kernels,
      reg,
      data,
      config,
      result,
      model: { config, weights, name: "mlp" },
      ema: { config, weights: ema, name: "mlp ema0.1" },
    };
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

const trained = trainedMlp();

Deno.test("eval: on a trained MLP, clean is the trainer's evaluation, FGSM at 0 is clean, PGD ≤ FGSM", async () => {
  const { gpu, kernels, reg, data, result, model } = await trained;
  // The classes' pixels differ by ≥ 0.5 (learnableImages): attacks bite from ε ≈ 0.25.
  const eps = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
  const report = await evaluateRun({
    gpu,
    kernels,
    registry: reg,
    target: model,
    dataset: data,
    batch: 16,
    precision: "f32",
    attacks: { ...NO_ATTACKS, fgsm: eps, pgd: eps },
    tta: [],
    ttaShift: 1,
  });
  // The same weights, split and evaluation pass as the trainer's last evaluation.
  assert.ok(Math.abs(report.test_accuracy - result.test_accuracy) < 1e-6);
  assert.ok(Math.abs(report.test_loss - result.test_loss) <= 1e-5 * (1 + result.test_loss));
  assert.ok(report.test_accuracy > 0.9, `the MLP learned (${report.test_accuracy})`);
  assert.strictEqual(report.fgsm[0]!.accuracy, report.test_accuracy);
  assert.strictEqual(report.fgsm[0]!.loss, report.test_loss);
  assert.strictEqual(report.pgd[0]!.accuracy, report.test_accuracy);
  for (const [i, e] of eps.entries()) {
    const f = report.fgsm[i]!;
    const p = report.pgd[i]!;
    assert.ok(p.accuracy <= f.accuracy, `ε=${e}: PGD ${p.accuracy} > FGSM ${f.accuracy}`);
    assert.ok(p.loss >= f.loss - 1e-6, `ε=${e}: PGD loss ${p.loss} < FGSM loss ${f.loss}`);
  }
  assert.ok(report.pgd.at(-1)!.accuracy < report.test_accuracy, "PGD lowers accuracy");
  // Confusion, F1: the matrix counts every sample, its diagonal is the accuracy.
  const m = report.confusion!;
  assert.strictEqual(m.flat().reduce((a, b) => a + b, 0), data.test.count);
  assert.strictEqual(
    m.reduce((t, row, i) => t + row[i]!, 0),
    report.test_accuracy * data.test.count,
  );
  assert.strictEqual(report.macro_f1, macroF1(m));
  // Row sums are the labels' counts.
  const labelCounts = new Array(4).fill(0);
  for (let i = 0; i < data.test.count; i++) labelCounts[data.test.labels[i]!]++;
  assert.deepStrictEqual(m.map((row) => row.reduce((a, b) => a + b, 0)), labelCounts);
});

Deno.test("eval: an EMA's weights from the checkpoint evaluate as the trainer evaluated them", async () => {
  const { gpu, kernels, reg, data, result, ema } = await trained;
  const report = await evaluateRun({
    gpu,
    kernels,
    registry: reg,
    target: ema,
    dataset: data,
    batch: 16,
    precision: "f32",
    tta: [],
    ttaShift: 1,
  });
  const expected = result.evaluations!["ema0.1"]!;
  assert.ok(Math.abs(report.test_accuracy - expected.test_accuracy) < 1e-6);
  assert.ok(Math.abs(report.test_loss - expected.test_loss) <= 1e-5 * (1 + expected.test_loss));
  assert.notStrictEqual(report.test_loss, result.evaluations!.plain!.test_loss);
});

Deno.test("eval: transfer from a model to itself is the white-box attack", async () => {
  const { gpu, kernels, reg, data, model } = await trained;
  const attacks = { ...NO_ATTACKS, fgsm: [0.1, 0.2], pgd: [0.1] };
  const options = {
    gpu,
    kernels,
    registry: reg,
    dataset: data,
    batch: 16,
    precision: "f32" as const,
    attacks,
    tta: [],
    ttaShift: 1,
  };
  const white = await evaluateRun({ ...options, target: model });
  const copy: RunModel = { ...model, name: "copy" };
  const transfer = await evaluateRun({ ...options, target: model, source: copy });
  assert.strictEqual(transfer.adversarial_from, "copy");
  for (const key of ["fgsm", "pgd"] as const) {
    for (const [i, p] of transfer[key].entries()) {
      assert.strictEqual(p.accuracy, white[key][i]!.accuracy, `${key} ${p.eps}`);
      assert.strictEqual(p.source_accuracy, white[key][i]!.accuracy, `${key} ${p.eps} (source)`);
    }
  }
});

Deno.test("eval: TTA with no augmentation is plain evaluation; flip and crop views are counted", async () => {
  const { gpu, kernels, reg, data, config, model } = await trained;
  const scope = gpu.scope("tta test");
  const k = kernels.withGpu(scope);
  try {
    const net = await loadNet({
      gpu: scope,
      kernels: k,
      registry: reg,
      config,
      info: data.info,
      batch: 16,
      precision: "f32",
      weights: model.weights,
    });
    const count = data.test.count;
    const split = uploadSplit(scope, "test", hostSplit(data.test, D));
    const run = async (views: ReturnType<typeof ttaViews>) =>
      await (await makeEvalSuite({
        gpu: scope,
        kernels: k,
        target: net,
        dataset: data,
        split,
        count,
        views,
      }))();
    const plain = await run(ttaViews([], 1));
    assert.strictEqual(plain.tta!.views, 1);
    assert.strictEqual(plain.tta!.accuracy, plain.clean.accuracy);
    assert.deepStrictEqual(plain.tta!.confusion, plain.confusion);
    const both = await run(ttaViews(parseTta("flip,crop"), 1));
    assert.strictEqual(both.tta!.views, 10);
    assert.strictEqual(both.clean.accuracy, plain.clean.accuracy);
    assert.strictEqual(both.tta!.confusion.flat().reduce((a, b) => a + b, 0), count);
  } finally {
    scope.dispose();
  }
  assert.throws(() => parseTta("flip,rotate"), /--tta: unknown augmentation "rotate"/);
});

Deno.test("eval: f16 agrees with f32 (accuracy within 2 samples, loss within 2%, attacks within 4 points)", async () => {
  const { gpu, kernels, reg, data, model } = await trained;
  const options = {
    gpu,
    kernels,
    registry: reg,
    target: model,
    dataset: data,
    batch: 16,
    attacks: { ...NO_ATTACKS, fgsm: [0, 0.3, 0.45], pgd: [0.3, 0.45] },
    tta: parseTta("flip"),
    ttaShift: 1,
  };
  const f32 = await evaluateRun({ ...options, precision: "f32" });
  const f16 = await evaluateRun({ ...options, precision: "f16" });
  const n = data.test.count;
  assert.strictEqual(f16.precision, "f16");
  assert.ok(Math.abs(f16.test_accuracy - f32.test_accuracy) <= 2 / n);
  assert.ok(Math.abs(f16.test_loss - f32.test_loss) <= 0.02 * f32.test_loss + 1e-5);
  for (const key of ["fgsm", "pgd"] as const) {
    for (const [i, p] of f16[key].entries()) {
      const q = f32[key][i]!;
      assert.ok(Math.abs(p.accuracy - q.accuracy) <= 0.04, `${key} ${p.eps}`);
      assert.ok(Math.abs(p.loss - q.loss) <= 0.02 * q.loss + 1e-5, `${key} ${p.eps} loss`);
    }
  }
  assert.ok(Math.abs(f16.tta!.accuracy - f32.tta!.accuracy) <= 2 / n);
});

Deno.test("eval: speed and FLOPs of a trained MLP", async () => {
  const { gpu, kernels, reg, data, config, model } = await trained;
  const report = await evaluateRun({
    gpu,
    kernels,
    registry: reg,
    target: model,
    dataset: data,
    batch: 16,
    precision: "f32",
    tta: [],
    ttaShift: 1,
    speedBatch: 64,
  });
  const s = report.speed!;
  assert.ok(s.latency_ms > 0 && s.roundtrip_ms > 0 && s.throughput > 0);
  assert.strictEqual(s.throughput_batch, 64);
  // Per sample: D→24 (2·D·24, bias and ReLU 2·24), 24→4 (2·24·4, bias 4), then the loss's values.
  const { graph } = await modelGraph(reg, config, data.info, 16);
  const loss = graph.nodes.at(-1)!;
  const expected = 2 * D * 24 + 2 * 24 + 2 * 24 * 4 + 4 + loss.output.size / 16;
  assert.strictEqual(forwardFlops(graph, reg.ops) / 16, expected);
  assert.strictEqual(report.flops_per_sample, expected);
  assert.strictEqual(report.params, D * 24 + 24 + 24 * 4 + 4);
});

Deno.test("eval metrics: per-class and macro F1, AUROC, bits per token against their definitions", () => {
  // [label][prediction]; class 2 is never predicted, class 3 never occurs nor is predicted.
  const m = [[5, 1, 0, 0], [2, 3, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]];
  const c = classMetrics(m);
  assert.deepStrictEqual(c.map((x) => x.support), [6, 5, 2, 0]);
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(c[0]!.precision, 5 / 8);
  close(c[0]!.recall, 5 / 6);
  close(c[0]!.f1, (2 * (5 / 8) * (5 / 6)) / (5 / 8 + 5 / 6));
  close(c[1]!.f1, (2 * (3 / 5) * (3 / 5)) / (6 / 5));
  assert.strictEqual(c[2]!.f1, 0);
  // sklearn's macro average over the labels present (0, 1, 2).
  close(macroF1(m), (c[0]!.f1 + c[1]!.f1 + 0) / 3);

  // AUROC: the fraction of (positive, negative) pairs ranked right, ties half.
  const random = seededRandom(9);
  const n = 57;
  const scores = Float32Array.from({ length: n }, () => Math.round(random() * 10) / 10);
  const labels = Uint8Array.from(
    { length: n },
    (_, i) => (random() < 0.3 + 0.4 * scores[i]! ? 1 : 0),
  );
  let pairs = 0;
  let won = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (labels[i] !== 1 || labels[j] !== 0) continue;
      pairs++;
      won += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  close(auroc(scores, labels)!, won / pairs);
  assert.strictEqual(auroc([0.1, 0.2], [1, 1]), null);
  close(bitsPerToken(Math.LN2 * 3), 3);
});
