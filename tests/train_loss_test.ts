/**
 * The loss as part of the graph, through the trainer: `--loss bce` and `--loss mse` train, a
 * model's auxiliary term is minimised beside the main one and each term is logged, `freeze`
 * leaves frozen weights untouched and gives them no optimizer state, and the evaluation-mode
 * backward to the input (dropout off, no smoothing, padding masked) equals finite differences of
 * the float64 interpreter.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";
import { RunFiles } from "../core/cli/run_files.ts";
import type { Config, ModelPlugin } from "../core/train/registry.ts";
import { Graph } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { builtinOps } from "../core/graph/rules.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { ModelPlan } from "../core/train/plan.ts";
import { createCounters } from "../core/gpu/counters.ts";
import { dispatchPhase, encodeSteps } from "../core/train/step.ts";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import { seededRandom } from "../core/util/random.ts";
import { interpretLoss } from "./reference/graph_interpreter.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";

const BASE: Config = {
  dataset: "synthetic",
  synthetic_features: 16,
  synthetic_train: 384,
  synthetic_test: 128,
  model: "mlp",
  widths: "16",
  batch_size: 32,
  epochs: 4,
  lr: 3e-3,
  log_every: 4,
};

async function run(values: Config, registry = builtinRegistry()) {
  const { gpu, kernels } = await testGpu();
  const merged: Config = { ...BASE, ...values };
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  const config = resolveConfig(registry, [{ source: "test", values: merged }]);
  const outDir = await Deno.makeTempDir({ prefix: "loss-" });
  const windows: { loss: number; terms?: Record<string, number> }[] = [];
  const files = await RunFiles.open(outDir, config, {});
  const result = await train({
    gpu,
    kernels,
    registry,
    config,
    outDir,
    events: files.events({ window: (w) => windows.push(w) }),
  });
  await files.close();
  const metrics = await Deno.readTextFile(`${outDir}/metrics.jsonl`);
  return { result, windows, outDir, metrics, config };
}

Deno.test("loss bce (one logit per row) and mse (one-hot targets) train through the trainer", async () => {
  for (const loss of ["bce", "mse"]) {
    const classes = loss === "bce" ? 2 : 3;
    const { result, windows, outDir } = await run({ loss, synthetic_classes: classes });
    ok(result.test_accuracy > 0.9, `${loss}: test accuracy ${result.test_accuracy}`);
    ok(
      windows.at(-1)!.loss < 0.5 * windows[0]!.loss,
      `${loss}: ${windows[0]!.loss} → ${windows.at(-1)!.loss}`,
    );
    if (loss === "bce") {
      const { tensors } = await readSafetensors(`${outDir}/model.safetensors`);
      deepStrictEqual(tensors["head.weight"]!.shape, [1, 16], "bce: one output");
    }
    await Deno.remove(outDir, { recursive: true });
  }
});

/** An MLP with an activity penalty on its hidden layer: an auxiliary loss term. */
const penalised: ModelPlugin = {
  kind: "model",
  name: "penalised-mlp",
  description: "test: MLP with an activity penalty",
  defaults: { penalty: 0.5 },
  build(g, input, config, info) {
    const h = nn.linear(g, input, "fc", { out: 16, activation: "sigmoid" });
    g.addLoss(nn.mean(g, h, 1), Number(config.penalty), { name: "activity" });
    return nn.linear(g, h, "head", { out: info.classes });
  },
};

Deno.test("an auxiliary loss term is minimised beside the main one, and every term is logged", async () => {
  const registry = builtinRegistry();
  registry.register(penalised, "test");
  const own = { model: "penalised-mlp", widths: undefined, synthetic_classes: 3 };
  const weak = await run({ ...own, penalty: 0 }, registry);
  const strong = await run({ ...own, penalty: 5 }, registry);
  const last = strong.windows.at(-1)!;
  deepStrictEqual(Object.keys(last.terms!).sort(), ["activity", "cross-entropy"]);
  // The logged loss is the weighted sum of the terms.
  assertClose([last.loss], [last.terms!["cross-entropy"]! + 5 * last.terms!.activity!], {
    atol: 1e-6,
    rtol: 1e-6,
    label: "loss = Σ weight·term",
  });
  // The penalty pushes the sigmoid activity down, well below the run without it (0.51 → 0.38
  // in 48 Adam steps at lr 3e-3 when this was written).
  const activity = (w: typeof last) => w.terms!.activity!;
  const unpenalised = activity(weak.windows.at(-1)!);
  ok(activity(last) < unpenalised - 0.08, `${activity(last)} vs ${unpenalised}`);
  const line = JSON.parse(strong.metrics.split("\n").find((l) => l.includes("loss_terms"))!);
  deepStrictEqual(Object.keys(line.loss_terms).sort(), ["activity", "cross-entropy"]);
  for (const r of [weak, strong]) await Deno.remove(r.outDir, { recursive: true });
});

Deno.test("freeze: frozen weights stay as initialised and have no optimizer state; the rest trains", async () => {
  const { result, outDir } = await run({ widths: "16", freeze: "layers.0", synthetic_classes: 3 });
  const { tensors } = await readSafetensors(`${outDir}/model.safetensors`);
  const names = Object.keys(tensors);
  ok(names.includes("layers.0.weight") && names.includes("head.weight"), names.join(", "));
  ok(!names.some((n) => n.startsWith("optim.layers.0")), "no state for the frozen layer");
  ok(names.includes("optim.head.weight.exp_avg"), "state for the head");
  // The frozen layer equals its initial values: the same seeded init, rebuilt here.
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{
    source: "test",
    values: { ...BASE, synthetic_classes: 3 },
  }]);
  const g = new Graph(32);
  registry.get("model", "mlp").build(g, g.input("x", 16), config, { features: 16, classes: 3 });
  const layout = new ParamLayout(g.params);
  const init = layout.initialValues(seededRandom(0));
  const seg = layout.segments.find((s) => s.param.name === "layers.0.weight")!;
  assertClose(
    toFloat32(tensors["layers.0.weight"]!),
    init.subarray(seg.offset, seg.offset + seg.size),
    {
      atol: 0,
      rtol: 0,
      label: "frozen layers.0.weight",
    },
  );
  ok(result.test_accuracy > 0.6, `the head alone still learns: ${result.test_accuracy}`);
  await Deno.remove(outDir, { recursive: true });
});

Deno.test("the evaluation-mode backward to the input: no dropout, no smoothing, padding masked", async () => {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("eval input grad");
  try {
    const batch = 6;
    const valid = 4;
    const g = new Graph(batch);
    const x = g.input("x", 5);
    const h = nn.dropout(g, nn.linear(g, x, "fc", { out: 7, activation: "gelu" }), 0.5);
    const { loss, correct } = nn.labelLoss(
      g,
      "cross-entropy",
      nn.linear(g, h, "head", { out: 3 }),
      {
        smoothing: 0.2,
      },
    );
    g.addLoss(loss, 1, { main: true, correct });
    const plan = await ModelPlan.build({
      gpu: scope,
      kernels: kernels.withGpu(scope),
      graph: g,
      ops: builtinOps(),
      counters: createCounters(scope),
      randomCounter: 2,
      seed: 1,
      inputGrad: { eval: true },
    });
    const random = seededRandom(21);
    const flat = plan.layout.initialValues(random);
    scope.write(plan.params, flat);
    const input = Float32Array.from({ length: batch * 5 }, () => 2 * random() - 1);
    const labels = Uint32Array.from({ length: batch }, (_, i) => i % 3);
    scope.write(plan.x, input);
    scope.write(plan.labels, labels);
    const encoder = scope.device.createCommandEncoder();
    encodeSteps(encoder, [dispatchPhase("input grad", await plan.inputGradPass(valid))]);
    scope.submit([encoder.finish()]);
    const dx = await scope.readF32(plan.inputGrad!, batch * 5);
    // The reference: the same model without dropout or smoothing, on the valid rows only.
    const ref = new Graph(valid);
    const rx = ref.input("x", 5);
    const rl = nn.labelLoss(
      ref,
      "cross-entropy",
      nn.linear(ref, nn.linear(ref, rx, "fc", { out: 7, activation: "gelu" }), "head", { out: 3 }),
    );
    ref.addLoss(rl.loss, 1, { main: true, correct: rl.correct });
    const params = new Map(plan.layout.segments.map((s) => [
      s.param.name,
      Float64Array.from(flat.subarray(s.offset, s.offset + s.size)),
    ]));
    const refInput = Float64Array.from(input.subarray(0, valid * 5));
    const fd = new Float64Array(valid * 5);
    for (let i = 0; i < fd.length; i++) {
      const keep = refInput[i]!;
      const at = (v: number) => {
        refInput[i] = v;
        return interpretLoss(ref, { params, input: refInput, labels });
      };
      fd[i] = (at(keep + 1e-6) - at(keep - 1e-6)) / 2e-6;
      refInput[i] = keep;
    }
    assertClose(dx.subarray(0, valid * 5), fd, { atol: 3e-5, rtol: 2e-3, label: "eval dLoss/dx" });
    ok(dx.subarray(valid * 5).every((v) => v === 0), "padding rows get no gradient");
    strictEqual(plan.trainInputGrad, undefined, "training computes no dx unless asked");
  } finally {
    scope.dispose();
  }
});
