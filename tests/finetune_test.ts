/**
 * Fine-tuning and linear probes (`deno task train --finetune DIR --mode finetune|linear`): which
 * parameters are the head and the input layer (declared or detected), what is loaded, and — end
 * to end through the CLI — that a linear probe changes only the head, loading the body bit for
 * bit, while its plan holds no gradient, optimizer state or backward work for the body.
 */

import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import {
  finetuneKeys,
  modelParts,
  planFinetune,
  selectingPrefixes,
} from "../core/train/finetune.ts";
import { finetuneOptions } from "../core/cli/finetune.ts";
import { buildRun } from "../core/train/build.ts";
import { Graph } from "../core/graph/graph.ts";
import { linear } from "../core/graph/nn.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import { seededRandom } from "../core/util/random.ts";
import type { Config, ModelPlugin } from "../core/train/registry.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { lastJson, runCli } from "./helpers/cli.ts";
import { testGpu } from "./helpers/gpu.ts";

const MLP: Config = { model: "mlp", widths: "8,8", loss: "cross-entropy" };

/** A model that declares neither its head nor its input layer: both are found by building it. */
const undeclared: ModelPlugin = {
  kind: "model",
  name: "two-layer",
  description: "test model",
  defaults: {},
  build(g, input, _config, info) {
    const h = linear(g, input, "stem", { out: 6, activation: "relu" });
    const h2 = linear(g, h, "trunk", { out: 6, activation: "relu" });
    return linear(g, h2, "classifier", { out: info.outputs ?? info.classes });
  },
};

Deno.test("finetune plan: the head is replaced, the input layer only when the features differ, the body loaded", () => {
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{ source: "test", values: MLP }]);
  const shapes = new Map<string, readonly number[]>([
    ["layers.0.weight", [8, 16]],
    ["layers.0.bias", [8]],
    ["layers.1.weight", [8, 8]],
    ["layers.1.bias", [8]],
    ["head.weight", [3, 8]],
    ["head.bias", [3]],
  ]);
  const same = planFinetune({
    registry,
    config,
    info: { features: 16, classes: 5 },
    mode: "linear",
    sourceShapes: shapes,
    sourcePath: "src.safetensors",
  });
  assert.strictEqual(same.parts.how, "declared");
  assert.deepStrictEqual(same.head, ["head.weight", "head.bias"]);
  assert.deepStrictEqual(same.input, []);
  assert.deepStrictEqual(same.loaded, [
    "layers.0.weight",
    "layers.0.bias",
    "layers.1.weight",
    "layers.1.bias",
  ]);
  assert.strictEqual(same.loadedValues, 8 * 16 + 8 + 8 * 8 + 8);
  // A linear probe freezes exactly the loaded body.
  assert.deepStrictEqual(finetuneKeys(config, same, 1), { freeze: "layers." });

  const wider = planFinetune({
    registry,
    config,
    info: { features: 20, classes: 3 },
    mode: "finetune",
    sourceShapes: shapes,
    sourcePath: "src.safetensors",
  });
  assert.deepStrictEqual(wider.input, ["layers.0.weight", "layers.0.bias"]);
  assert.deepStrictEqual(wider.loaded, ["layers.1.weight", "layers.1.bias"]);
  // The body's lr multiplier reaches the loaded body only, not the fresh input layer.
  assert.deepStrictEqual(finetuneKeys(config, wider, 0.1), { lr_multipliers: "layers.1.=0.1" });

  // A body tensor of another shape is an error naming the file and the tensor.
  assert.throws(
    () =>
      planFinetune({
        registry,
        config: resolveConfig(registry, [{ source: "test", values: { ...MLP, widths: "8,4" } }]),
        info: { features: 16, classes: 3 },
        mode: "finetune",
        sourceShapes: shapes,
        sourcePath: "src.safetensors",
      }),
    /src\.safetensors: tensor "layers\.1\.weight" is \[8,8\], model "mlp" needs \[4,8\]/,
  );
});

Deno.test("finetune plan: a model without head/inputLayer fields has them detected from how its shapes follow the data", () => {
  const parts = modelParts(undeclared, {}, { features: 10, classes: 4, outputs: 4 });
  assert.deepStrictEqual(parts, { head: ["classifier"], input: ["stem"], how: "detected" });
  // freeze/lr_multipliers match by plain startsWith: "layers.1" would also catch "layers.10".
  assert.deepStrictEqual(
    selectingPrefixes(["layers.1.weight", "layers.1.bias"], [
      "layers.1.weight",
      "layers.1.bias",
      "layers.10.weight",
    ]),
    ["layers.1."],
  );
});

Deno.test("finetune options: --body-lr-mult defaults to finetune.py's 0.1, and conflicts are named", () => {
  assert.deepStrictEqual(finetuneOptions(undefined, undefined, ""), {
    mode: "finetune",
    bodyLrMult: 0.1,
  });
  assert.deepStrictEqual(finetuneOptions("linear", undefined, ""), {
    mode: "linear",
    bodyLrMult: 1,
  });
  assert.throws(
    () => finetuneOptions("probe", undefined, ""),
    /--mode must be "finetune" or "linear"/,
  );
  assert.throws(() => finetuneOptions("linear", "0.5", ""), /--mode linear freezes the body/);
  assert.throws(() => finetuneOptions(undefined, "-1", ""), /--body-lr-mult must be a number ≥ 0/);
});

Deno.test("deno task train --finetune --mode linear: only the head changes; no gradient, state or backward work for the body", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "user-" });
  const data = (classes: number) => [
    "--dataset",
    "synthetic",
    "--synthetic-features",
    "16",
    "--synthetic-classes",
    String(classes),
    "--synthetic-train",
    "256",
    "--synthetic-test",
    "64",
  ];
  try {
    const source = await runCli("train", [
      ...data(3),
      ...["--model", "mlp", "--widths", "8,8", "--epochs", "2", "--batch-size", "32"],
      ...["--out", "src"],
    ], cwd);
    assert.strictEqual(source.code, 0, source.stderr);
    const probe = await runCli("train", [
      ...["--finetune", "src", "--mode", "linear"],
      ...data(5),
      ...["--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--out", "probe", "--json"],
    ], cwd);
    assert.strictEqual(probe.code, 0, probe.stderr);
    assert.match(
      probe.stdout + probe.stderr,
      /linear probe: the body is frozen \(freeze "layers\."\)/,
    );
    assert.ok(Number(lastJson(probe.stdout).test_accuracy) >= 0);

    const before = (await readSafetensors(join(cwd, "src", "model.safetensors"))).tensors;
    const after = (await readSafetensors(join(cwd, "probe", "model.safetensors"))).tensors;
    // The body: the source's values, bit for bit.
    for (const name of ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]) {
      assertClose(toFloat32(after[name]!), toFloat32(before[name]!), {
        atol: 0,
        rtol: 0,
        label: `frozen ${name}`,
      });
    }
    // The head: new for 5 classes, and trained away from its seeded initialisation.
    assert.deepStrictEqual(after["head.weight"]!.shape, [5, 8]);
    const record = JSON.parse(await Deno.readTextFile(join(cwd, "probe", "config.json")));
    const registry = builtinRegistry();
    const config = resolveConfig(registry, [{
      source: "probe config.json",
      values: record.config,
    }]);
    const g = new Graph(32);
    registry.get("model", "mlp").build(g, g.input("x", 16), config, { features: 16, classes: 5 });
    const layout = new ParamLayout(g.params);
    const init = layout.initialValues(seededRandom(Number(config.seed)));
    const seg = layout.segments.find((s) => s.param.name === "head.weight")!;
    const head = toFloat32(after["head.weight"]!);
    const initHead = init.subarray(seg.offset, seg.offset + seg.size);
    const moved = head.reduce((m, v, i) => Math.max(m, Math.abs(v - initHead[i]!)), 0);
    assert.ok(moved > 1e-4, `the head trained: max change ${moved}`);
    // Optimizer state only for the head.
    const optim = Object.keys(after).filter((n) => n.startsWith("optim."));
    assert.ok(optim.length > 0 && optim.every((n) => n.startsWith("optim.head.")), optim.join());
    assert.strictEqual(record.finetune.mode, "linear");
    assert.deepStrictEqual(record.finetune.head, ["head.weight", "head.bias"]);

    // The plan of the probe's config: the trainable prefix is the head alone, the gradient and
    // state buffers hold nothing more, and the backward computes no body gradient.
    const { gpu, kernels } = await testGpu();
    const built = await buildRun({ gpu, kernels, registry, config });
    const full = await buildRun({ gpu, kernels, registry, config: { ...config, freeze: "" } });
    try {
      const { layout } = built.plan;
      const trainable = layout.segments.filter((s) => s.offset < layout.trainableTotal);
      assert.deepStrictEqual(trainable.map((s) => s.param.name).sort(), [
        "head.bias",
        "head.weight",
      ]);
      const body = layout.segments.filter((s) => s.param.name.startsWith("layers."));
      assert.ok(body.length === 4 && body.every((s) => s.offset >= layout.trainableTotal));
      assert.ok(layout.trainableTotal < full.plan.layout.trainableTotal);
      assert.strictEqual(built.plan.grads.size, layout.trainableTotal * 4, "gradient bytes");
      assert.ok(built.optimizer.state.length > 0);
      for (const s of built.optimizer.state) {
        assert.strictEqual(s.size, layout.trainableTotal * 4, "optimizer state bytes");
      }
      const labels = built.plan.backward.map((d) => d.label);
      assert.ok(labels.length > 0 && labels.every((l) => !/layers\./.test(l)), labels.join("; "));
      assert.ok(full.plan.backward.some((d) => /layers\.0/.test(d.label)), "the full plan does");
    } finally {
      built.dispose();
      full.dispose();
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("preset scaling-mlps-finetune: the fine-tuning recipe of algorithms.md §1.4 on an image dataset", () => {
  const config = resolveConfig(builtinRegistry(), [{
    source: "test",
    values: { preset: "scaling-mlps-finetune", dataset: "idx", epochs: 2 },
  }]);
  const picked = Object.fromEntries(
    [
      "optimizer",
      "momentum",
      "lr",
      "weight_decay",
      "label_smoothing",
      "mixup",
      "max_grad_norm",
      "schedule",
      "batch_size",
      "crop_scale",
      "crop_ratio",
      "epochs",
    ].map((k) => [k, config[k]]),
  );
  assert.deepStrictEqual(picked, {
    optimizer: "sgd",
    momentum: 0.9,
    lr: 0.01,
    weight_decay: 1e-4,
    label_smoothing: 0.3,
    mixup: 0,
    max_grad_norm: 1,
    schedule: "constant",
    batch_size: 2048,
    crop_scale: "0.4,1",
    crop_ratio: "1,1",
    epochs: 2,
  });
});
