/**
 * Shared by the SAM tests: a small `mlp` run on the synthetic dataset trained on the GPU, and the
 * same run's inputs for the float64 reference of tests/reference/sam.ts (initial weights in the
 * GPU's flat layout, normalised rows, each step's batch and epoch order, the lr of every step, the
 * base optimizer's float64 rule).
 */

import { join } from "node:path";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../../core/train/config.ts";
import { Graph } from "../../core/graph/graph.ts";
import { ParamLayout } from "../../core/graph/params.ts";
import { epochPermutation } from "../../core/train/data.ts";
import { scheduledLrs } from "../../core/train/build.ts";
import { train, type TrainResult } from "../../core/train/trainer.ts";
import type { Config } from "../../core/train/registry.ts";
import { readSafetensors, toFloat32 } from "../../core/io/safetensors.ts";
import { seededRandom } from "../../core/util/random.ts";
import { adamRef, lionRef, sgdRef } from "../reference/optimizer.ts";
import type { RefBase, SamRefOptions } from "../reference/sam.ts";
import type { Activation } from "../../core/ops/activation_ids.ts";
import { testGpu } from "./gpu.ts";

/** The small run every SAM test starts from; tests override keys. */
export const SAM_RUN: Config = {
  dataset: "synthetic",
  synthetic_features: 12,
  synthetic_classes: 4,
  synthetic_train: 200,
  synthetic_test: 20,
  synthetic_noise: 60,
  model: "mlp",
  widths: "10",
  activation: "gelu",
  schedule: "constant",
  lr: 0.05,
  weight_decay: 0,
  batch_size: 16,
  train_samples: 16 * 10,
  epochs: 2,
  log_every: 1,
  seed: 5,
};

/** A GPU run's result, first-pass losses and checkpoint tensors. */
export interface GpuRun {
  config: Config;
  result: TrainResult;
  losses: number[];
  tensors: Record<string, Float32Array>;
}

/** Trains `values` over {@link SAM_RUN} on the GPU; reads its checkpoint back. */
export async function gpuRun(values: Config, outDir?: string): Promise<GpuRun> {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const config = resolveConfig(registry, [{ source: "test", values: { ...SAM_RUN, ...values } }]);
  const dir = outDir ?? await Deno.makeTempDir({ prefix: "sam-" });
  const losses: number[] = [];
  try {
    const result = await train({
      gpu,
      kernels,
      registry,
      config,
      outDir: dir,
      events: { window: (w) => losses.push(w.loss) },
    });
    const read = await readSafetensors(join(dir, "model.safetensors"));
    const tensors = Object.fromEntries(
      Object.entries(read.tensors).map(([k, t]) => [k, toFloat32(t)]),
    );
    return { config, result, losses, tensors };
  } finally {
    if (!outDir) await Deno.remove(dir, { recursive: true });
  }
}

/** The base optimizer's float64 rule for a resolved config. */
export function refBase(config: Config): RefBase {
  const name = String(config.sam_base);
  const step = (grads: Float64Array, lr: number, t: number) => ({
    grads,
    sumSq: grads.reduce((s, g) => s + g * g, 0),
    lr,
    t,
    maxNorm: Number(config.max_grad_norm),
    gradScale: 1,
  });
  const n = (p: Float64Array) => p.length;
  let m: Float64Array | undefined;
  let v: Float64Array | undefined;
  return (params, grads, segments, lr, t) => {
    m ??= new Float64Array(n(params));
    v ??= new Float64Array(n(params));
    if (name === "sgd") {
      sgdRef({ params, m }, segments, step(grads, lr, t), {
        momentum: Number(config.momentum),
        dampening: Number(config.dampening),
        nesterov: config.nesterov === true,
      });
    } else if (name === "adam" || name === "adamw") {
      adamRef({ params, m, v }, segments, step(grads, lr, t), {
        beta1: Number(config.beta1),
        beta2: Number(config.beta2),
        eps: Number(config.eps),
        decoupled: name === "adamw",
      });
    } else if (name === "lion") {
      lionRef({ params, m }, segments, step(grads, lr, t), {
        beta1: Number(config.beta1),
        beta2: Number(config.beta2),
      });
    } else {
      throw new RangeError(`no float64 rule for base "${name}" in this test`);
    }
  };
}

/** The reference's inputs for a resolved config (everything but the SAM keys). */
export async function referenceInputs(
  config: Config,
): Promise<
  Omit<SamRefOptions, "rho" | "adaptive" | "onePass" | "mask"> & {
    layout: ParamLayout;
  }
> {
  const registry = builtinRegistry();
  const data = await registry.get("dataset", "synthetic").load(config);
  const features = data.info.features;
  const batch = Number(config.batch_size) * Number(config.grad_accum);
  const graph = new Graph(batch);
  registry.get("model", "mlp").build(graph, graph.input("x", features), config, data.info);
  const layout = new ParamLayout(graph.params);
  const init = layout.initialValues(seededRandom(Number(config.seed)));
  const params = Float64Array.from(init.subarray(0, layout.trainableTotal));
  const tensors = layout.segments.map((s) => ({
    offset: s.offset,
    size: s.size,
    decay: s.param.decay,
  }));
  const shapes = layout.segments.filter((_, i) => i % 2 === 0).map((s) => ({
    outF: s.param.shape[0]!,
    inF: s.param.shape[1]!,
  }));
  const x = Float64Array.from(data.train.samples, (v) => (v / 255 - data.mean[0]!) / data.std[0]!);
  const rows = Number(config.train_samples);
  const perEpoch = Math.floor(rows / batch);
  const epochs = Number(config.epochs);
  const seed = Number(config.seed);
  const batches: number[][] = [];
  const positions: SamRefOptions["positions"] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = epochPermutation(rows, seed, epoch, seededRandom);
    for (let s = 0; s < perEpoch; s++) {
      batches.push(Array.from(order.subarray(s * batch, (s + 1) * batch)));
      positions.push({ epoch, stepInEpoch: s, order });
    }
  }
  const schedule = registry.get("schedule", String(config.schedule));
  return {
    layout,
    params,
    tensors,
    shapes,
    activation: String(config.activation) as Activation,
    x,
    labels: data.train.labels,
    features,
    classes: data.info.classes,
    batches,
    positions,
    epochs,
    lrs: scheduledLrs(schedule, config, batches.length, perEpoch),
    weightDecay: Number(config.weight_decay),
    base: refBase(config),
  };
}

/** The trainable tensors of a flat float64 vector, by name (for comparing with a checkpoint). */
export function byName(layout: ParamLayout, flat: ArrayLike<number>): Record<string, number[]> {
  return Object.fromEntries(
    layout.segments.map((s) => [
      s.param.name,
      Array.from({ length: s.size }, (_, i) => flat[s.offset + i]!),
    ]),
  );
}
