/**
 * The static plan of a model: the graph turned into fixed lists of dispatches over buffers made
 * once. Parameters are one flat buffer, trainable ones first; gradients cover only that prefix
 * (a frozen parameter has no gradient, no optimizer state and no backward work); activations and
 * their gradients come from a pool reused by liveness; a reshape's output is a view of its input's
 * buffer.
 *
 * The loss is part of the graph: its terms (`Graph.addLoss`, the main one with correct flags)
 * seed the backward pass with their constant gradients weight / (elements · micro-batches), so a
 * training micro-step is forward (loss ops included) → backward. The evaluation pass runs the same
 * forward without dropout, smoothing or mixup and with the last batch's padding masked; with
 * `inputGrad` the plan also records an evaluation-mode backward to the input (adversarial
 * examples), with its own gradient buffers.
 *
 * Precision "f16" stores values as f16: activations, the batch input, and a copy of the
 * parameters that {@link ModelPlan.refreshWeights} converts from the f32 master weights. Losses,
 * gradients, master weights and optimizer state stay f32, every kernel accumulates in f32, and
 * tensors marked {@link Tensor.f32} (LayerNorm statistics, losses) stay f32.
 *
 * @module
 */

import { type Gpu, GpuError, type Storage, storageBytes } from "../gpu/device.ts";
import type { Graph, LossTerm, Tensor } from "../graph/graph.ts";
import type { BufferRef, Dispatch, KernelCache } from "../gpu/kernels.ts";
import { PARAM_ALIGN, ParamLayout } from "../graph/params.ts";
import { BufferPool } from "../gpu/pool.ts";
import type { OpTable } from "../graph/rules.ts";
import { backward } from "../graph/autodiff.ts";
import { LOSS_OPS } from "../graph/rules_loss.ts";
import { scale } from "../ops/elementwise.ts";
import type { MixupTargets } from "../ops/softmax_cross_entropy.ts";
import { type PassMode, PlanState, valueStorage } from "./plan_state.ts";

/** What a model plan is made from. */
export interface ModelPlanOptions {
  gpu: Gpu;
  kernels: KernelCache;
  /** The model's graph, its loss terms added (`Graph.addLoss`). */
  graph: Graph;
  /** The run's op rules (the registry's table; nodes may carry their own). */
  ops: OpTable;
  /** The GPU step counters the random ops read (see core/gpu/counters.ts). */
  counters: GPUBuffer;
  /** Which counter keys dropout (the global micro-step). */
  randomCounter: number;
  seed: number;
  /** Micro-batches per optimizer step: each term's gradient is a mean over all of them. */
  microBatches?: number;
  /** Mixup targets, when mixup is on: second labels and λ, filled by the data step. */
  mixup?: MixupTargets;
  /** Parameters that get no gradient (a linear probe's frozen body). */
  frozen?: (name: string) => boolean;
  /** How values are stored: "f32" (default) or "f16" (needs `shader-f16`; see the module doc). */
  precision?: Storage;
  /**
   * Gradients to the batch input: `eval` records an evaluation-mode backward to it
   * ({@link ModelPlan.inputGradPass}: adversarial examples); `train` makes the training backward
   * compute dLoss/dx too ({@link ModelPlan.trainInputGrad}: gradient checks, input attribution).
   */
  inputGrad?: { eval?: boolean; train?: boolean };
  /**
   * Tensors whose values outlive the backward, each in a whole buffer of its own
   * ({@link ModelPlan.kept}): the predictions `deno task predict` reads
   * after an evaluation pass, the logits a text generator samples from.
   */
  keep?: readonly Tensor[];
  /**
   * Another plan's buffers to work over instead of making its own: the flat parameters (and
   * their f16 copy under precision "f16") and gradients, e.g. a batch-1 plan of the same model
   * for per-sample gradients. The layouts must match (same graph parameters, same precision).
   */
  shared?: { params: GPUBuffer; params16?: GPUBuffer; grads: GPUBuffer };
}

export { valueStorage };

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

/**
 * Fails naming the op when the graph's loss is malformed: no terms, a fused loss op whose output
 * is not a term or is read by another op, a term that no parameter or wanted tensor reaches.
 */
export function checkLoss(graph: Graph): void {
  if (graph.losses.length === 0) {
    throw new RangeError(
      "the graph has no loss: a model returns its predictions (the trainer adds the configured loss) or adds terms with g.addLoss",
    );
  }
  const terms = new Set(graph.losses.map((l) => l.tensor));
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (input.producer && LOSS_OPS.has(input.producer.op)) {
        throw new RangeError(
          `loss "${input.name}" (${input.producer.op}) is read by op "${node.op}": a fused loss's output may only be a loss term`,
        );
      }
    }
    if (LOSS_OPS.has(node.op) && !terms.has(node.output)) {
      throw new RangeError(
        `loss op "${node.op}" (${node.output.name}) is not a loss term: add it with g.addLoss`,
      );
    }
  }
}

/** Bytes by kind, for the memory report printed at start. */
export interface MemoryReport {
  params: number;
  grads: number;
  activations: number;
}

/** A loss term's buffers: its values (`size` floats) and its constant gradient. */
export interface PlannedTerm {
  readonly name: string;
  readonly weight: number;
  readonly main: boolean;
  readonly size: number;
  readonly values: GPUBuffer;
}

/** A model's forward, loss, backward and evaluation dispatches over preallocated buffers. */
export class ModelPlan {
  readonly layout: ParamLayout;
  readonly params: GPUBuffer;
  /** The f16 copy of the parameters under precision "f16" (see refreshWeights). */
  readonly params16?: GPUBuffer;
  /** Gradients of the trainable prefix of the layout ({@link ParamLayout.trainableTotal}). */
  readonly grads: GPUBuffer;
  /** How values are stored: the batch input `x` is of this type. */
  readonly precision: Storage;
  /** The batch input and labels [batch] (u32) the data step fills. */
  readonly x: GPUBuffer;
  readonly labels: GPUBuffer;
  /** The loss terms, in the graph's order. */
  readonly terms: readonly PlannedTerm[];
  /** The main term's per-row values and correct flags (what the accuracy and loss read). */
  readonly lossRows: GPUBuffer;
  readonly correctRows: GPUBuffer;
  /**
   * Converts the f32 parameters into their f16 copy (precision "f16"; empty otherwise): encode it
   * before the forward passes of each optimizer step and of each evaluation.
   */
  readonly refreshWeights: readonly Dispatch[];
  /** Training forward, loss ops included (they write their predictions' gradients). */
  readonly trainForward: readonly Dispatch[];
  readonly backward: readonly Dispatch[];
  /** dLoss/dx of the batch input after {@link inputGradPass} (with `inputGrad.eval`). */
  readonly inputGrad?: GPUBuffer;
  /** dLoss/dx of the training loss after the training backward (with `inputGrad.train`). */
  readonly trainInputGrad?: GPUBuffer;
  /** The buffer of each tensor of {@link ModelPlanOptions.keep}. */
  readonly kept: ReadonlyMap<Tensor, GPUBuffer>;
  readonly #build: (mode: PassMode, validRows: number) => Promise<Dispatch[]>;
  readonly #state: PlanState;
  readonly #pool: BufferPool;
  readonly #evalPasses = new Map<string, Promise<Dispatch[]>>();
  readonly #evalBackward?: Dispatch[];
  readonly #owned: GPUBuffer[];
  /** Whether params, params16 and grads belong to another plan (see `shared`). */
  readonly #shared: boolean;

  private constructor(init: {
    layout: ParamLayout;
    params: GPUBuffer;
    params16?: GPUBuffer;
    grads: GPUBuffer;
    precision: Storage;
    x: GPUBuffer;
    labels: GPUBuffer;
    terms: PlannedTerm[];
    correctRows: GPUBuffer;
    refreshWeights: Dispatch[];
    trainForward: Dispatch[];
    backward: Dispatch[];
    inputGrad?: GPUBuffer;
    trainInputGrad?: GPUBuffer;
    evalBackward?: Dispatch[];
    kept: Map<Tensor, GPUBuffer>;
    build: (mode: PassMode, validRows: number) => Promise<Dispatch[]>;
    state: PlanState;
    pool: BufferPool;
    owned: GPUBuffer[];
    shared: boolean;
  }) {
    this.layout = init.layout;
    this.params = init.params;
    this.params16 = init.params16;
    this.grads = init.grads;
    this.precision = init.precision;
    this.x = init.x;
    this.labels = init.labels;
    this.terms = init.terms;
    this.lossRows = init.terms.find((t) => t.main)?.values ?? init.terms[0]!.values;
    this.correctRows = init.correctRows;
    this.refreshWeights = init.refreshWeights;
    this.trainForward = init.trainForward;
    this.backward = init.backward;
    this.inputGrad = init.inputGrad;
    this.trainInputGrad = init.trainInputGrad;
    this.#evalBackward = init.evalBackward;
    this.kept = init.kept;
    this.#build = init.build;
    this.#state = init.state;
    this.#pool = init.pool;
    this.#owned = init.owned;
    this.#shared = init.shared;
  }

  /** Builds every dispatch of the model once. */
  static async build(options: ModelPlanOptions): Promise<ModelPlan> {
    const { gpu, kernels, graph } = options;
    const batch = graph.batch;
    const precision = options.precision ?? "f32";
    checkPrecision(gpu, graph, precision, options.ops);
    checkLoss(graph);
    const half = precision === "f16";
    const frozen = options.frozen ?? (() => false);
    const layout = new ParamLayout(
      graph.params,
      half ? PARAM_ALIGN.f16 : PARAM_ALIGN.f32,
      (p) => !frozen(p.name),
    );
    checkFits(gpu, graph, layout, precision);
    const state = new PlanState(options, layout);
    const { params, params16, input, pool } = state;
    const grads = options.shared?.grads ??
      gpu.storage("gradients (flat)", Math.max(layout.trainableTotal, 1) * 4);
    if (options.shared && options.shared.grads.size < Math.max(layout.trainableTotal, 1) * 4) {
      throw new RangeError(
        `a plan over shared buffers: the gradient buffer holds ${options.shared.grads.size} bytes, the layout needs ${
          layout.trainableTotal * 4
        }`,
      );
    }
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
    const trainForward = await state.forward("train", batch);
    const trainBackward = await backward({
      graph,
      ops: options.ops,
      seeds: graph.losses.map((l) => ({
        tensor: l.tensor,
        grad: state.constantGrad(l.tensor, state.termScale(l.tensor)),
      })),
      wanted: options.inputGrad?.train ? [input] : [],
      pool,
      paramGrad: (t) => layout.range(grads, t),
      trainable: (t) => !frozen(t.name),
      base: state.context("train", batch),
      done: (node) => state.release(node),
    });
    // The evaluation-mode backward to the input: its own gradient pool, and no value is released.
    const main = graph.mainLoss;
    let evalPass: { dispatches: Dispatch[]; grad?: GPUBuffer } | undefined;
    if (options.inputGrad?.eval && main) {
      const ownPool = new BufferPool(gpu);
      const pass = await backward({
        graph,
        ops: options.ops,
        seeds: [{ tensor: main.tensor, grad: state.constantGrad(main.tensor, 1) }],
        wanted: [input],
        pool: ownPool,
        paramGrad: () => {
          throw new Error("no parameter gradients in the input-gradient pass");
        },
        trainable: () => false,
        base: state.context("input-grad", batch),
        done: () => {},
      });
      evalPass = { dispatches: pass.dispatches, grad: pass.wanted.get(input) };
      state.owned.push(...ownPool.buffers());
    }
    return new ModelPlan({
      layout,
      params,
      params16,
      grads,
      precision,
      x: state.x,
      labels: state.labels,
      terms: graph.losses.map((l: LossTerm) => ({
        name: l.name,
        weight: l.weight,
        main: l.main,
        size: l.tensor.size,
        values: asWhole(state.value(l.tensor), `loss term "${l.name}"`),
      })),
      correctRows: main?.correct
        ? asWhole(state.value(main.correct), "correct flags")
        : state.zeros("no correct flags (zeros)", batch),
      refreshWeights,
      trainForward,
      backward: trainBackward.dispatches,
      inputGrad: evalPass?.grad,
      trainInputGrad: trainBackward.wanted.get(input),
      evalBackward: evalPass?.dispatches,
      kept: new Map(
        (options.keep ?? []).map((t) => [t, asWhole(state.value(t), `kept tensor "${t.name}"`)]),
      ),
      build: (mode, rows) => state.forward(mode, rows),
      state,
      pool,
      owned: state.owned,
      shared: options.shared !== undefined,
    });
  }

  /** The evaluation forward over the first `validRows` rows (the last batch may be partial). */
  evalForward(validRows: number): Promise<Dispatch[]> {
    return this.#pass("eval", validRows);
  }

  /**
   * Forward in evaluation mode with the main loss's gradient, then backward to the input:
   * afterwards {@link inputGrad} holds dLoss/dx (mean over the valid rows). Needs `inputGrad`.
   */
  async inputGradPass(validRows: number): Promise<Dispatch[]> {
    if (!this.#evalBackward) {
      throw new RangeError(
        "this plan was built without inputGrad.eval (or its loss has no main term)",
      );
    }
    return [...await this.#pass("input-grad", validRows), ...this.#evalBackward];
  }

  /**
   * The buffer of a tensor's value and its storage type: after an evaluation forward it holds
   * the batch's value (the evaluation passes release nothing), e.g. the logits the evaluation's
   * metrics read.
   */
  evalValue(t: Tensor): { buffer: BufferRef; storage: Storage } {
    return { buffer: this.#state.value(t), storage: this.#state.storage(t) };
  }

  #pass(mode: PassMode, validRows: number): Promise<Dispatch[]> {
    const key = `${mode}:${validRows}`;
    let d = this.#evalPasses.get(key);
    if (!d) {
      d = this.#build(mode, validRows);
      this.#evalPasses.set(key, d);
    }
    return d;
  }

  /** Bytes by kind. */
  memory(): MemoryReport {
    return {
      params: this.params.size + (this.params16?.size ?? 0),
      grads: this.grads.size,
      activations: this.#pool.bytes + this.x.size + this.labels.size +
        this.#owned.reduce((n, b) => n + b.size, 0),
    };
  }

  /** Frees every buffer of the plan. */
  dispose(): void {
    this.#pool.dispose();
    const own = this.#shared ? [] : [this.params, this.params16, this.grads];
    for (const b of [...own, this.x, this.labels, ...this.#owned]) b?.destroy();
  }
}

function asWhole(ref: BufferRef, what: string): GPUBuffer {
  if (ref instanceof GPUBuffer) return ref;
  throw new RangeError(`${what} must be a whole buffer`);
}
