/**
 * The step as data: the phase encoder, the default recipe, and an optimizer plugin that brings its
 * own step — SAM's pass → perturb (w += ρ·g/‖g‖, ‖g‖ read on the GPU) → pass again → restore →
 * update — without any change to the trainer, its weights after 3 steps compared with a float64
 * CPU computation of the same rule.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { Graph } from "../core/graph/graph.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { epochPermutation } from "../core/train/data.ts";
import { train } from "../core/train/trainer.ts";
import { buildRun } from "../core/train/build.ts";
import { buildStep } from "../core/train/recipe.ts";
import { describeSteps, dispatchPhase, type Phase } from "../core/train/step.ts";
import type { OptimizerPlugin } from "../core/train/registry.ts";
import { grid, packUniform, wgsl } from "../core/gpu/kernels.ts";
import { sgd } from "../core/ops/optimizer.ts";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import { seededRandom } from "../core/util/random.ts";
import { type RefLinear, refLossAndGrads } from "./reference/mlp_trainer.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";

/** The test's own kernel: SAM's perturbation and its undoing, over the flat buffers. */
const SAM_TEST_KERNEL = wgsl(
  "sam-test",
  /* wgsl */ `
struct P { n: u32, rho: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> e: array<f32>;
@group(0) @binding(3) var<storage, read> norm2: array<f32>;
@group(0) @binding(4) var<uniform> p: P;

@compute @workgroup_size(256)
fn perturb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let d = p.rho * g[i] / (sqrt(norm2[0]) + 1e-12);
  e[i] = d;
  w[i] = w[i] + d;
}

@group(0) @binding(1) var<storage, read> e_in: array<f32>;
@group(0) @binding(2) var<uniform> q: P;

@compute @workgroup_size(256)
fn restore(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= q.n) { return; }
  w[i] = w[i] - e_in[i];
}
`,
);

/** SAM over plain SGD, written as a plugin: the trainer knows nothing of its two passes. */
const samTest: OptimizerPlugin = {
  kind: "optimizer",
  name: "sam-test",
  description: "SAM over SGD (test)",
  defaults: { rho: 0.05 },
  slots: ["sam_e"],
  create: (ctx) =>
    sgd(ctx.kernels, {
      params: ctx.params,
      grads: ctx.grads,
      segments: ctx.segments,
      segmentCount: ctx.segmentCount,
      counters: ctx.counters,
      lrTable: ctx.lrTable,
      n: ctx.n,
    }),
  async step(parts, ctx, config): Promise<Phase[]> {
    const uniform = ctx.kernels.gpu.uniform(
      "sam-test params",
      packUniform([["u32", ctx.n], ["f32", Number(config.rho)], ["u32", 0], ["u32", 0]]),
    );
    const perturb = await ctx.kernels.dispatch({
      kernel: SAM_TEST_KERNEL,
      entry: "perturb",
      bindings: [ctx.params, ctx.grads, ctx.state[0]!, parts.gradNormBuffer, uniform],
      workgroups: grid(ctx.n, 256),
    });
    const restore = await ctx.kernels.dispatch({
      kernel: SAM_TEST_KERNEL,
      entry: "restore",
      bindings: [ctx.params, ctx.state[0]!, uniform],
      workgroups: grid(ctx.n, 256),
    });
    return [
      parts.clearGrads,
      parts.pass(),
      parts.gradNormSq,
      dispatchPhase("perturb", [perturb]),
      parts.clearGrads,
      parts.pass({ again: true, metrics: false }),
      dispatchPhase("restore", [restore]),
      parts.update,
      parts.advanceStep,
    ];
  },
};

const SEED = 5;
const BATCH = 16;
const STEPS = 3;

function samConfig(registry: ReturnType<typeof builtinRegistry>, extra: Record<string, unknown>) {
  return resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "synthetic",
      synthetic_features: 12,
      synthetic_classes: 4,
      synthetic_train: 200,
      synthetic_test: 20,
      synthetic_noise: 60,
      model: "mlp",
      widths: "10",
      activation: "gelu",
      optimizer: "sam-test",
      schedule: "constant",
      lr: 0.2,
      weight_decay: 0,
      rho: 0.1,
      batch_size: BATCH,
      train_samples: BATCH * STEPS,
      epochs: 1,
      log_every: 1,
      seed: SEED,
      ...extra,
    },
  }]);
}

Deno.test("step: the default recipe is clear → pass (micro-batches) → update → counter", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "synthetic",
      model: "mlp",
      widths: "8",
      optimizer: "adamw",
      batch_size: 8,
      grad_accum: 3,
      max_grad_norm: 1,
    },
  }]);
  const run = await buildRun({ gpu, kernels, registry, config });
  try {
    const step = await buildStep(run);
    deepStrictEqual(describeSteps(step.phases), [
      "clear zero gradients",
      "micro-batches ×3",
      "  dispatch forward+backward",
      "dispatch Σg²",
      "dispatch adamw update",
      "dispatch next optimizer step",
    ]);
  } finally {
    run.dispose();
  }
});

Deno.test("step: a SAM-shaped optimizer plugin's two-pass step matches float64 SAM over 3 steps", async () => {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  registry.register(samTest, "test");
  const config = samConfig(registry, {});
  const outDir = await Deno.makeTempDir({ prefix: "sam-step-" });
  const losses: number[] = [];
  await train({
    gpu,
    kernels,
    registry,
    config,
    outDir,
    events: { window: (w) => losses.push(w.loss) },
  });
  strictEqual(losses.length, STEPS, "one metric window per step, from the first pass only");
  const { tensors } = await readSafetensors(`${outDir}/model.safetensors`);

  // The reference: the same initial weights and batches, SAM over SGD in float64.
  const data = await registry.get("dataset", "synthetic").load(config);
  const features = data.info.features;
  const graph = new Graph(BATCH);
  registry.get("model", "mlp").build(graph, graph.input("x", features), config, data.info);
  const layout = new ParamLayout(graph.params);
  const init = layout.initialValues(seededRandom(SEED));
  const segments = layout.segments;
  const layers: RefLinear[] = [];
  for (let i = 0; i < segments.length; i += 2) {
    const w = segments[i]!;
    const b = segments[i + 1]!;
    layers.push({
      w: Float64Array.from(init.subarray(w.offset, w.offset + w.size)),
      b: Float64Array.from(init.subarray(b.offset, b.offset + b.size)),
      outF: w.param.shape[0]!,
      inF: w.param.shape[1]!,
    });
  }
  const x = Float64Array.from(data.train.samples, (v) => (v / 255 - data.mean[0]!) / data.std[0]!);
  const model = {
    layers,
    activation: "gelu" as const,
    x,
    labels: data.train.labels,
    features,
    classes: data.info.classes,
  };
  const order = epochPermutation(BATCH * STEPS, SEED, 0, seededRandom);
  const params = layers.flatMap((l) => [l.w, l.b]);
  const rho = 0.1;
  const lr = 0.2;
  const refLosses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const rows = Array.from({ length: BATCH }, (_, r) => order[step * BATCH + r]!);
    const first = refLossAndGrads(model, rows);
    refLosses.push(first.loss);
    const norm = Math.sqrt(first.grads.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0));
    const e = first.grads.map((g) => g.map((v) => (rho * v) / (norm + 1e-12)));
    params.forEach((p, i) => p.forEach((_, j) => (p[j] = p[j]! + e[i]![j]!)));
    const second = refLossAndGrads(model, rows);
    params.forEach((p, i) =>
      p.forEach((_, j) => (p[j] = p[j]! - e[i]![j]! - lr * second.grads[i]![j]!))
    );
  }
  assertClose(losses, refLosses, { atol: 1e-6, rtol: 1e-4, label: "SAM first-pass losses" });
  // f32 sums over ≤ 16·12 terms per gradient and 3 steps: ~1e-6 of the weights' scale.
  segments.forEach((seg, i) => {
    assertClose(toFloat32(tensors[seg.param.name]!), params[i]!, {
      atol: 2e-6,
      rtol: 1e-4,
      label: `SAM weights ${seg.param.name} after ${STEPS} steps`,
    });
  });
  // The second pass changed the update: plain SGD from the same start ends elsewhere.
  const sgdDir = await Deno.makeTempDir({ prefix: "sgd-step-" });
  await train({
    gpu,
    kernels,
    registry,
    config: samConfig(registry, { rho: 0 }),
    outDir: sgdDir,
  });
  const plain = (await readSafetensors(`${sgdDir}/model.safetensors`)).tensors;
  const name = segments[0]!.param.name;
  const moved = toFloat32(plain[name]!).some((v, j) =>
    Math.abs(v - toFloat32(tensors[name]!)[j]!) > 1e-5
  );
  ok(moved, "ρ = 0.1 and ρ = 0 end at different weights");
  await Deno.remove(outDir, { recursive: true });
  await Deno.remove(sgdDir, { recursive: true });
});
