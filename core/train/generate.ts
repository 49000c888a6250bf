/**
 * A trained run's model at batch size 1, for generation one token at a time: its predictions for
 * one input row (an evaluation forward, the logits read back), and one optimizer step on one
 * (row, label) pair — the AUNN's test-time conditioning (algorithms.md §6.1: a prompt, or the
 * model's own samples, learned by gradient steps at their positions). The weights, optimizer
 * state and step counters come from the run's checkpoint, so the run's own optimizer continues
 * where training left it, at a constant lr of its own (`adapt_lr`). Everything lives in one GPU
 * scope, freed by {@link RowModel.dispose}.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encode, type KernelCache } from "../gpu/kernels.ts";
import {
  advanceCounters,
  createCounters,
  GLOBAL_MICRO_STEP,
  OPTIMIZER_STEP,
} from "../gpu/counters.ts";
import { Graph, type Tensor } from "../graph/graph.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { segmentReduce } from "../ops/reduce.ts";
import { buildOptimizer, runSettings } from "./build.ts";
import { parseFreeze } from "./config.ts";
import { ModelPlan } from "./plan.ts";
import type { Config, DatasetInfo, Registry } from "./registry.ts";
import { baseOptimizer, runSlots } from "./wrapped_optimizer.ts";

/** What {@link RowModel.open} needs. */
export interface RowModelOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The run's resolved config (its config.json). */
  config: Config;
  /** The dataset's info, as the run saw it. */
  info: DatasetInfo;
  /** The run's checkpoint (model.safetensors). */
  checkpoint: string;
  /** The lr of the conditioning steps (default: the run's `lr`). */
  adaptLr?: number;
  /** The most conditioning steps that will be taken (sizes the lr table). */
  maxSteps: number;
}

/** A trained model, one row at a time. */
export class RowModel {
  readonly classes: number;
  readonly features: number;
  readonly #gpu: Gpu;
  readonly #plan: ModelPlan;
  readonly #predictions: Tensor;
  readonly #eval: Dispatch[];
  readonly #step: Dispatch[];
  readonly #clear: GPUBuffer;

  private constructor(init: {
    gpu: Gpu;
    plan: ModelPlan;
    predictions: Tensor;
    eval: Dispatch[];
    step: Dispatch[];
    classes: number;
    features: number;
  }) {
    this.#gpu = init.gpu;
    this.#plan = init.plan;
    this.#predictions = init.predictions;
    this.#eval = init.eval;
    this.#step = init.step;
    this.#clear = init.plan.grads;
    this.classes = init.classes;
    this.features = init.features;
  }

  /** Builds the batch-1 model, its evaluation pass and its conditioning step, and loads the run. */
  static async open(options: RowModelOptions): Promise<RowModel> {
    const { registry } = options;
    const config: Config = {
      ...options.config,
      batch_size: 1,
      grad_accum: 1,
      schedule: "constant",
      warmup_steps: 0,
      lr: options.adaptLr ?? options.config.lr,
    };
    const settings = runSettings(config);
    const gpu = options.gpu.scope("generate");
    const kernels = options.kernels.withGpu(gpu);
    try {
      const plugin = registry.get("optimizer", String(config.optimizer));
      if (plugin.step) {
        throw new RangeError(
          `optimizer "${plugin.name}" makes its own step phases; conditioning steps (--adapt, --prompt) use one plain update: train with another optimizer, or generate without them`,
        );
      }
      const loss = registry.get("loss", String(config.loss));
      const info = { ...options.info };
      info.outputs = loss.outputs?.(info) ?? info.classes;
      const graph = new Graph(1);
      const input = graph.input("x", info.features);
      const predictions = await registry.get("model", String(config.model)).build(
        graph,
        input,
        config,
        info,
      );
      if (!graph.mainLoss) loss.apply(graph, predictions, config, info);
      const counters = createCounters(gpu);
      const plan = await ModelPlan.build({
        gpu,
        kernels,
        graph,
        ops: registry.ops,
        counters,
        randomCounter: GLOBAL_MICRO_STEP,
        seed: settings.seed,
        microBatches: 1,
        frozen: parseFreeze(config.freeze),
        precision: settings.precision,
        keep: [predictions],
      });
      // The checkpoint first (its step sizes the lr table), then the optimizer over the plan.
      const base = baseOptimizer(registry, config, plugin);
      const slotNames = runSlots(plugin, base, config);
      const saved = await loadCheckpoint(options.checkpoint, plan.layout, [
        ...slotNames.base,
        ...slotNames.own,
      ]);
      const optimizer = await buildOptimizer(
        gpu,
        kernels,
        registry,
        config,
        settings,
        plan,
        counters,
        {
          totalSteps: saved.step + options.maxSteps + 1,
          stepsPerEpoch: 1,
        },
      );
      gpu.write(plan.params, saved.params);
      saved.state.forEach((s, i) => gpu.write(optimizer.state[i]!, s));
      gpu.write(counters, Uint32Array.from(saved.counters));
      const refresh = [...plan.refreshWeights];
      const clip = settings.maxGradNorm > 0
        ? await segmentReduce(kernels, {
          x: plan.grads,
          offsets: [0, Math.max(plan.layout.trainableTotal, 1)],
          out: optimizer.context.gradNorm,
          square: true,
          label: "Σg²",
        })
        : [];
      const step = [
        ...refresh,
        ...plan.trainForward,
        ...plan.backward,
        ...clip,
        ...optimizer.update,
        await advanceCounters(
          kernels,
          counters,
          { [OPTIMIZER_STEP]: 1, [GLOBAL_MICRO_STEP]: 1 },
          "next conditioning step",
        ),
      ];
      return new RowModel({
        gpu,
        plan,
        predictions,
        eval: [...refresh, ...await plan.evalForward(1)],
        step,
        classes: predictions.shape[predictions.shape.length - 1]!,
        features: info.features,
      });
    } catch (e) {
      gpu.dispose();
      throw e;
    }
  }

  #input(row: Float32Array, label: number): void {
    if (row.length !== this.features) {
      throw new RangeError(`a row of ${row.length} features; the model reads ${this.features}`);
    }
    this.#gpu.write(this.#plan.x, row);
    this.#gpu.write(this.#plan.labels, Uint32Array.of(label));
  }

  /** The model's predictions (logits) for one row, in evaluation mode. */
  async predict(row: Float32Array): Promise<Float32Array> {
    this.#input(row, 0);
    const encoder = this.#gpu.device.createCommandEncoder({ label: "predict one row" });
    const pass = encoder.beginComputePass({ label: "predict one row" });
    encode(pass, this.#eval);
    pass.end();
    this.#gpu.submit([encoder.finish()]);
    const out = this.#plan.kept.get(this.#predictions)!;
    return await this.#gpu.readF32(out, this.classes);
  }

  /** One optimizer step on (row, label), in training mode (one command buffer, no readback). */
  learn(row: Float32Array, label: number): void {
    if (!Number.isInteger(label) || label < 0 || label >= this.classes) {
      throw new RangeError(`label ${label} is outside the model's ${this.classes} classes`);
    }
    this.#input(row, label);
    const encoder = this.#gpu.device.createCommandEncoder({ label: "conditioning step" });
    encoder.clearBuffer(this.#clear);
    const pass = encoder.beginComputePass({ label: "conditioning step" });
    encode(pass, this.#step);
    pass.end();
    this.#gpu.submit([encoder.finish()]);
  }

  /** Frees everything the model made. */
  dispose(): void {
    this.#gpu.dispose();
  }
}

/** How {@link sampleToken} picks. */
export interface SampleOptions {
  /** Softmax temperature; 0 picks the most likely token (ties: the lowest id). */
  temperature: number;
  /** Sample among the k most likely tokens only; 0 = all. */
  topK: number;
  /** Uniform numbers in [0, 1) (a seeded generator, for reproducible text). */
  random: () => number;
  /** Tokens never picked (e.g. a vocabulary's "unknown" class). */
  exclude?: ReadonlySet<number>;
}

/** A token drawn from softmax(logits / temperature) restricted to the top k (float64). */
export function sampleToken(logits: ArrayLike<number>, options: SampleOptions): number {
  const { temperature, topK } = options;
  if (!(temperature >= 0 && Number.isFinite(temperature))) {
    throw new RangeError(`temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0) {
    throw new RangeError(`top_k must be an integer ≥ 0, got ${topK}`);
  }
  const ids = Array.from({ length: logits.length }, (_, i) => i)
    .filter((i) => !options.exclude?.has(i) && !Number.isNaN(logits[i]!));
  if (ids.length === 0) throw new RangeError("no token to sample: every logit is excluded or NaN");
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const kept = ids.slice(0, topK > 0 ? topK : ids.length);
  if (temperature === 0 || kept.length === 1) return kept[0]!;
  const top = logits[kept[0]!]!;
  const weights = kept.map((i) => Math.exp((logits[i]! - top) / temperature));
  let u = options.random() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < kept.length; j++) {
    u -= weights[j]!;
    if (u < 0) return kept[j]!;
  }
  return kept[kept.length - 1]!;
}
