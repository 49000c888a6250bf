/**
 * The static plan of a model: the graph turned into a fixed list of dispatches over buffers made
 * once. Parameters and gradients are one flat buffer each; activations and their gradients come
 * from a pool reused by liveness. A training micro-step is: forward → softmax cross-entropy →
 * backward (parameter gradients accumulated into the flat gradient buffer). The evaluation pass
 * reuses the same activation buffers without dropout and without gradients.
 *
 * Precision "f16" stores values as f16: activations, the batch input, logits, and a copy of the
 * parameters that {@link ModelPlan.refreshWeights} converts from the f32 master weights (one
 * elementwise pass the trainer encodes once per optimizer step and once per evaluation, so a
 * loaded checkpoint or an optimizer update is always seen). Gradients,
 * the master weights and optimizer state stay f32, every kernel accumulates in f32, and tensors
 * marked {@link Tensor.f32} (LayerNorm statistics) stay f32.
 *
 * @module
 */

import { type Gpu, GpuError, type Storage, storageBytes } from "../gpu/device.ts";
import type { Graph, Node, Tensor } from "../graph/graph.ts";
import type { BufferRef, Dispatch, KernelCache } from "../gpu/kernels.ts";
import { PARAM_ALIGN, ParamLayout } from "../graph/params.ts";
import { BufferPool } from "../gpu/pool.ts";
import type { OpTable, RuleContext } from "../graph/rules.ts";
import { backward } from "../graph/autodiff.ts";
import { softmaxCrossEntropy } from "../ops/softmax_cross_entropy.ts";
import { scale } from "../ops/elementwise.ts";

/** What a model plan is made from. */
export interface ModelPlanOptions {
  gpu: Gpu;
  kernels: KernelCache;
  graph: Graph;
  /** The run's op rules (the registry's table; nodes may carry their own). */
  ops: OpTable;
  /** The model's input tensor [batch, features] and its output logits [batch, classes]. */
  input: Tensor;
  logits: Tensor;
  /** The GPU step counters the random ops read (see core/counters.ts). */
  counters: GPUBuffer;
  /** Which counter keys dropout (the global micro-step). */
  randomCounter: number;
  seed: number;
  labelSmoothing: number;
  /** Mixup targets, when mixup is on: second labels and λ, filled by the data step. */
  mixup?: { labels2: GPUBuffer; lambda: GPUBuffer };
  /** Scales the loss gradient: 1/(batch·micro-batches) for the mean over an accumulated step. */
  gradScale: number;
  /** Parameters that get no gradient (a linear probe's frozen body). */
  frozen?: (name: string) => boolean;
  /** How values are stored: "f32" (default) or "f16" (needs `shader-f16`; see the module doc). */
  precision?: Storage;
}

/** The storage type of a tensor's value under a precision (gradients are always f32). */
export function valueStorage(t: Tensor, precision: Storage): Storage {
  return precision === "f16" && !t.f32 ? "f16" : "f32";
}

/**
 * Fails before anything is built when precision "f16" cannot run: the adapter lacks
 * `shader-f16`, or an op of the graph has no f16 rule (a plugin op that does not declare it).
 */
export function checkPrecision(
  gpu: Gpu,
  graph: Graph,
  precision: Storage,
  ops: OpTable,
): void {
  if (precision !== "f16") return;
  if (!gpu.has("shader-f16")) {
    throw new GpuError(
      `precision "f16" needs the adapter feature "shader-f16", which ${gpu.report.description} lacks; use --precision f32`,
    );
  }
  const unsupported = [
    ...new Set(graph.nodes.filter((n) => !ops.of(n).f16).map((n) => n.op)),
  ];
  if (unsupported.length > 0) {
    throw new RangeError(
      `precision "f16": op${unsupported.length > 1 ? "s" : ""} ${
        unsupported.map((o) => `"${o}"`).join(", ")
      } of this model ${
        unsupported.length > 1 ? "have" : "has"
      } no f16 rule (a rule opts in with f16: true); use --precision f32`,
    );
  }
}

/**
 * Fails before anything is allocated when a buffer of the plan would exceed the adapter's
 * binding or buffer limits, naming each such buffer with its size.
 */
export function checkFits(
  gpu: Gpu,
  graph: Graph,
  layout: ParamLayout,
  precision: Storage = "f32",
): void {
  const maxBinding = gpu.report.limits.maxStorageBufferBindingSize ?? Infinity;
  const maxBuffer = gpu.report.limits.maxBufferSize ?? Infinity;
  const limit = Math.min(maxBinding, maxBuffer);
  const sizes: [string, number][] = [
    ["parameters (flat)", layout.total * 4],
    ...graph.tensors.filter((t) => t.kind !== "param").map((
      t,
    ): [string, number] => [
      `activation "${t.name}" [${t.shape}]`,
      t.size * storageBytes(valueStorage(t, precision)),
    ]),
  ];
  const over = sizes.filter(([, bytes]) => bytes > limit);
  if (over.length > 0) {
    throw new GpuError(
      `the model does not fit this adapter (${gpu.report.description}): ${
        over.map(([name, bytes]) => `${name} needs ${bytes} bytes`).join("; ")
      }; the adapter binds at most ${maxBinding} bytes per buffer (maxStorageBufferBindingSize) and allocates at most ${maxBuffer} (maxBufferSize). Use a smaller batch size or model.`,
    );
  }
}

/** Bytes by kind, for the memory report printed at start. */
export interface MemoryReport {
  params: number;
  grads: number;
  activations: number;
}

/** A model's forward, loss, backward and evaluation dispatches over preallocated buffers. */
export class ModelPlan {
  readonly layout: ParamLayout;
  readonly params: GPUBuffer;
  /** The f16 copy of the parameters under precision "f16" (see refreshWeights). */
  readonly params16?: GPUBuffer;
  readonly grads: GPUBuffer;
  /** How values are stored: the batch input `x` and the logits are of this type. */
  readonly precision: Storage;
  /** The batch input [batch, features] and labels [batch] (u32) the data step fills. */
  readonly x: GPUBuffer;
  readonly labels: GPUBuffer;
  /** Per-row loss and correct flags of the last batch. */
  readonly lossRows: GPUBuffer;
  readonly correctRows: GPUBuffer;
  /**
   * Converts the f32 parameters into their f16 copy (precision "f16"; empty otherwise): encode it
   * before the forward passes of each optimizer step and of each evaluation.
   */
  readonly refreshWeights: readonly Dispatch[];
  readonly trainForward: readonly Dispatch[];
  readonly trainLoss: Dispatch;
  readonly backward: readonly Dispatch[];
  readonly evalForward: readonly Dispatch[];
  readonly #options: ModelPlanOptions;
  readonly #pool: BufferPool;
  readonly #dLogits: GPUBuffer;
  readonly #values: Map<Tensor, BufferRef>;
  #evalLoss = new Map<number, Promise<Dispatch>>();

  private constructor(init: {
    options: ModelPlanOptions;
    layout: ParamLayout;
    params: GPUBuffer;
    params16?: GPUBuffer;
    grads: GPUBuffer;
    x: GPUBuffer;
    labels: GPUBuffer;
    lossRows: GPUBuffer;
    correctRows: GPUBuffer;
    pool: BufferPool;
    dLogits: GPUBuffer;
    values: Map<Tensor, BufferRef>;
    refreshWeights: Dispatch[];
    trainForward: Dispatch[];
    trainLoss: Dispatch;
    backward: Dispatch[];
    evalForward: Dispatch[];
  }) {
    this.#options = init.options;
    this.layout = init.layout;
    this.params = init.params;
    this.params16 = init.params16;
    this.grads = init.grads;
    this.precision = init.options.precision ?? "f32";
    this.x = init.x;
    this.labels = init.labels;
    this.lossRows = init.lossRows;
    this.correctRows = init.correctRows;
    this.#pool = init.pool;
    this.#dLogits = init.dLogits;
    this.#values = init.values;
    this.refreshWeights = init.refreshWeights;
    this.trainForward = init.trainForward;
    this.trainLoss = init.trainLoss;
    this.backward = init.backward;
    this.evalForward = init.evalForward;
  }

  /** Builds every dispatch of the model once. */
  static async build(options: ModelPlanOptions): Promise<ModelPlan> {
    const { gpu, kernels, graph } = options;
    const batch = graph.batch;
    const precision = options.precision ?? "f32";
    checkPrecision(gpu, graph, precision, options.ops);
    const storage = (t: Tensor) => valueStorage(t, precision);
    const half = precision === "f16";
    const layout = new ParamLayout(graph.params, half ? PARAM_ALIGN.f16 : PARAM_ALIGN.f32);
    checkFits(gpu, graph, layout, precision);
    const params = gpu.storage("parameters (flat)", layout.total * 4);
    const params16 = half ? gpu.storage("parameters (f16 copy)", layout.total * 2) : undefined;
    const grads = gpu.storage("gradients (flat)", layout.total * 4);
    const pool = new BufferPool(gpu);
    const values = new Map<Tensor, BufferRef>();
    const x = gpu.storage("batch input", options.input.size * storageBytes(storage(options.input)));
    values.set(options.input, x);
    for (const p of graph.params) {
      values.set(p.tensor, layout.range(params16 ?? params, p.tensor, storage(p.tensor)));
    }
    const labels = gpu.storage("batch labels", batch * 4);
    const lossRows = gpu.storage("loss per row", batch * 4);
    const correctRows = gpu.storage("correct per row", batch * 4);

    const value = (t: Tensor): BufferRef => {
      let v = values.get(t);
      if (!v) {
        v = pool.acquire(t.size, t.name, storage(t));
        values.set(t, v);
      }
      return v;
    };
    const frozen = options.frozen ?? (() => false);
    const random = (node: Node) => ({
      seed: options.seed >>> 0,
      stream: node.id + 1,
      counters: options.counters,
      counterIndex: options.randomCounter,
    });
    const base = (training: boolean): Omit<RuleContext, "grad" | "passGrad" | "temp"> => ({
      kernels,
      training,
      value,
      storage,
      random,
    });
    const noBackward = {
      grad: () => undefined,
      passGrad: () => Promise.resolve([]),
      temp: () => {
        throw new Error("temp buffers exist only in backward");
      },
    };
    // The f16 copy of the weights.
    const refreshWeights = params16
      ? [
        await scale(kernels, {
          x: params,
          out: params16,
          n: layout.total,
          alpha: 1,
          storage: { x: "f32", out: "f16" },
          label: "parameters → f16",
        }),
      ]
      : [];
    const trainForward: Dispatch[] = [];
    const evalForward: Dispatch[] = [];
    for (const node of graph.nodes) {
      value(node.output);
      for (const s of node.saved) value(s);
      const rule = options.ops.of(node);
      trainForward.push(...await rule.forward({ ...base(true), ...noBackward }, node));
      evalForward.push(...await rule.forward({ ...base(false), ...noBackward }, node));
    }
    const dLogits = gpu.storage("d logits", options.logits.size * 4);
    const classes = options.logits.shape[1]!;
    const trainLoss = await softmaxCrossEntropy(kernels, {
      logits: value(options.logits) as GPUBuffer,
      labels,
      loss: lossRows,
      correct: correctRows,
      grad: dLogits,
      rows: batch,
      classes,
      labelSmoothing: options.labelSmoothing,
      gradScale: options.gradScale,
      mixup: options.mixup,
      storage: storage(options.logits),
      label: "softmax cross-entropy (train)",
    });
    const backwardDispatches = await backward({
      graph,
      ops: options.ops,
      seed: { tensor: options.logits, grad: dLogits },
      pool,
      paramGrad: (t) => layout.range(grads, t),
      trainable: (t) => !frozen(t.name),
      base: base(true),
      done: (node) => {
        for (const t of [node.output, ...node.saved]) {
          const v = values.get(t);
          if (v instanceof GPUBuffer && t !== options.logits) pool.release(v);
        }
      },
    });
    return new ModelPlan({
      options,
      layout,
      params,
      params16,
      grads,
      x,
      labels,
      lossRows,
      correctRows,
      pool,
      dLogits,
      values,
      refreshWeights,
      trainForward,
      trainLoss,
      backward: backwardDispatches,
      evalForward,
    });
  }

  /** The evaluation loss over the first `validRows` rows (the last batch may be partial). */
  evalLoss(validRows: number): Promise<Dispatch> {
    let d = this.#evalLoss.get(validRows);
    if (!d) {
      const { graph, logits, labelSmoothing } = this.#options;
      d = softmaxCrossEntropy(this.#options.kernels, {
        logits: this.#values.get(logits) as GPUBuffer,
        labels: this.labels,
        loss: this.lossRows,
        correct: this.correctRows,
        rows: graph.batch,
        classes: logits.shape[1]!,
        validRows,
        labelSmoothing,
        gradScale: 0,
        storage: valueStorage(logits, this.precision),
        label: `softmax cross-entropy (eval, ${validRows} rows)`,
      });
      this.#evalLoss.set(validRows, d);
    }
    return d;
  }

  /** The logits buffer (for tests and inspection). */
  get logits(): GPUBuffer {
    return this.#values.get(this.#options.logits) as GPUBuffer;
  }

  /** Bytes by kind. */
  memory(): MemoryReport {
    return {
      params: this.params.size + (this.params16?.size ?? 0),
      grads: this.grads.size,
      activations: this.#pool.bytes + this.x.size + this.#dLogits.size + this.lossRows.size * 3,
    };
  }

  /** Frees every buffer of the plan. */
  dispose(): void {
    this.#pool.dispose();
    for (
      const b of [
        this.params,
        this.params16,
        this.grads,
        this.x,
        this.labels,
        this.lossRows,
        this.correctRows,
        this.#dLogits,
      ]
    ) {
      b?.destroy();
    }
  }
}
