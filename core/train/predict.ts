/**
 * Applying a trained model to new rows (`deno task predict`): the run's model is built once for
 * a batch size — its evaluation pass only, every parameter frozen, so there is no gradient or
 * optimizer state — its checkpoint's weights loaded, and each batch of rows goes through the
 * same gather (with the run's normalisation) and evaluation forward that measured the run's test
 * accuracy; the predictions are copied into one of two staging buffers, so the next batch is on
 * the GPU while the last one is read.
 *
 * @module
 */

import { createCounters, GLOBAL_MICRO_STEP } from "../gpu/counters.ts";
import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { Graph } from "../graph/graph.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { gatherFor, type GpuSplit, rangeIndices } from "./data.ts";
import { ModelPlan, valueStorage } from "./plan.ts";
import type { Config, DatasetInfo, Registry } from "./registry.ts";
import { dispatchPhase, encodeSteps } from "./step.ts";

/** What a run's model reads: the data's shape and the normalisation the gather applies. */
export interface ModelInput {
  info: DatasetInfo;
  /** Mean and std as {@link DatasetSplits.mean} (of byte/255, or of the f32 value). */
  mean: number[];
  std: number[];
}

/** Rows to predict: `rows` rows of `info.features` values, and their labels when known. */
export interface RowBatch {
  samples: Uint8Array | Float32Array;
  labels?: Uint32Array;
  rows: number;
}

/** What a {@link Predictor} is made from. */
export interface PredictorOptions {
  /** The device; the predictor allocates in its own scope of it. */
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The run's config (model, loss, precision, seed). */
  config: Config;
  input: ModelInput;
  /** Rows per batch through the GPU. */
  batch: number;
  /** Whether rows are f32 features (else bytes). */
  float: boolean;
  /** The checkpoint whose weights are applied. */
  checkpoint: string;
}

/** A run's model on the GPU, applied batch by batch. */
export class Predictor {
  /** Values per row of the predictions: the classes, or 1 for a loss with one logit (bce). */
  readonly outputs: number;
  readonly batch: number;
  readonly #gpu: Gpu;
  readonly #predictions: GPUBuffer;
  readonly #storage: "f32" | "f16";
  readonly #data: GPUBuffer;
  readonly #labels: GPUBuffer;
  readonly #float: boolean;
  readonly #features: number;
  readonly #passes: (rows: number) => Promise<GPUCommandBuffer>;
  readonly #staging: [GPUBuffer, GPUBuffer];
  #slot: 0 | 1 = 0;
  /** Each staging buffer's last read; the last submission (batches are submitted in order). */
  #busy: [Promise<unknown>, Promise<unknown>] = [Promise.resolve(), Promise.resolve()];
  #submitted: Promise<unknown> = Promise.resolve();

  private constructor(init: {
    outputs: number;
    batch: number;
    gpu: Gpu;
    predictions: GPUBuffer;
    storage: "f32" | "f16";
    data: GPUBuffer;
    labels: GPUBuffer;
    float: boolean;
    features: number;
    passes: (rows: number) => Promise<GPUCommandBuffer>;
  }) {
    this.outputs = init.outputs;
    this.batch = init.batch;
    this.#gpu = init.gpu;
    this.#predictions = init.predictions;
    this.#storage = init.storage;
    this.#data = init.data;
    this.#labels = init.labels;
    this.#float = init.float;
    this.#features = init.features;
    this.#passes = init.passes;
    const bytes = init.batch * init.outputs * (init.storage === "f16" ? 2 : 4);
    const staging = () =>
      init.gpu.createBuffer(
        "predictions staging",
        Math.ceil(bytes / 4) * 4,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      );
    this.#staging = [staging(), staging()];
  }

  /** Builds the model's evaluation pass and loads the checkpoint's weights. */
  static async create(options: PredictorOptions): Promise<Predictor> {
    const { registry, config, input, batch, float } = options;
    const gpu = options.gpu.scope("predict");
    const kernels = options.kernels.withGpu(gpu);
    try {
      const graph = new Graph(batch);
      const x = graph.input("x", input.info.features);
      const loss = registry.get("loss", String(config.loss));
      const info = { ...input.info };
      info.outputs = loss.outputs?.(info) ?? info.classes;
      const predictions = registry.get("model", String(config.model)).build(graph, x, config, info);
      if (!graph.mainLoss) loss.apply(graph, predictions, config, info);
      const precision = config.precision === "f16" ? "f16" : "f32";
      const plan = await ModelPlan.build({
        gpu,
        kernels,
        graph,
        ops: registry.ops,
        counters: createCounters(gpu),
        randomCounter: GLOBAL_MICRO_STEP,
        seed: Number(config.seed ?? 0),
        frozen: () => true,
        precision,
        keep: [predictions],
      });
      const ck = await loadCheckpoint(options.checkpoint, plan.layout, []);
      gpu.write(plan.params, ck.params);
      const features = info.features;
      const data = gpu.storage(
        "rows to predict",
        float ? batch * features * 4 : Math.ceil((batch * features) / 4) * 4,
      );
      const labels = gpu.storage("labels of the rows", batch * 4);
      const split: GpuSplit = {
        samples: data,
        samplesB: data,
        labels,
        float,
        first: 0,
        count: batch,
      };
      const gather = await gatherFor(kernels, split, input, {
        indices: rangeIndices(gpu, "row indices", 0, batch),
        indexCount: batch,
        cursor: gpu.storage("row cursor", 16),
        cursorIndex: 0,
        x: plan.x,
        y: plan.labels,
        batch,
        storage: plan.precision,
        label: "gather rows",
      });
      const out = plan.kept.get(predictions)!;
      const storage = valueStorage(predictions.view ?? predictions, precision);
      const predictor = new Predictor({
        outputs: predictions.size / batch,
        batch,
        gpu,
        predictions: out,
        storage,
        data,
        labels,
        float,
        features,
        passes: async (rows) => {
          const encoder = gpu.device.createCommandEncoder({ label: `predict ${rows} rows` });
          const dispatches = [gather, ...await plan.evalForward(rows)];
          encodeSteps(encoder, [dispatchPhase(`predict ${rows} rows`, dispatches)], 1, "predict");
          return encoder.finish();
        },
      });
      // The f16 copy of the weights, once (precision "f16"; nothing otherwise).
      const encoder = gpu.device.createCommandEncoder({ label: "weights → f16" });
      encodeSteps(encoder, [dispatchPhase("weights → f16", plan.refreshWeights)], 1, "f16 copy");
      gpu.submit([encoder.finish()]);
      return predictor;
    } catch (e) {
      gpu.dispose();
      throw e;
    }
  }

  /**
   * Submits a batch of at most {@link batch} rows and resolves to its predictions, `rows ×
   * outputs` f32 values. Batches are submitted in call order; the next may be submitted before
   * this one resolves.
   */
  run(batch: RowBatch): Promise<Float32Array> {
    const { rows } = batch;
    if (!(rows >= 1 && rows <= this.batch)) {
      throw new RangeError(`a batch of ${rows} rows; the predictor takes 1..${this.batch}`);
    }
    const slot = this.#slot as 0 | 1;
    this.#slot = slot === 0 ? 1 : 0;
    const staging = this.#staging[slot]!;
    const size = rows * this.outputs * (this.#storage === "f16" ? 2 : 4);
    const copy = Math.ceil(size / 4) * 4;
    // The rows are written after the previous batch was submitted (queue writes are ordered with
    // submissions), and into a staging buffer whose last read has ended.
    const submitted = Promise.all([this.#submitted, this.#busy[slot]!]).then(async () => {
      const commands = await this.#passes(rows);
      const values = batch.samples.subarray(0, rows * this.#features);
      this.#gpu.write(this.#data, values);
      this.#gpu.write(this.#labels, batch.labels?.subarray(0, rows) ?? new Uint32Array(rows));
      const encoder = this.#gpu.device.createCommandEncoder({ label: "read predictions" });
      encoder.copyBufferToBuffer(this.#predictions, 0, staging, 0, copy);
      this.#gpu.submit([commands, encoder.finish()]);
    });
    this.#submitted = submitted.catch(() => {});
    const done = submitted.then(async () => {
      await staging.mapAsync(GPUMapMode.READ, 0, copy);
      this.#gpu.check();
      const bytes = staging.getMappedRange(0, copy).slice(0, size);
      staging.unmap();
      return this.#storage === "f16"
        ? Float32Array.from(new Float16Array(bytes))
        : new Float32Array(bytes);
    });
    this.#busy[slot] = done.catch(() => {});
    return done;
  }

  /** Frees every buffer of the predictor (its scope of the device). */
  dispose(): void {
    this.#gpu.dispose();
  }
}
