/**
 * What a plan keeps while it records its passes: each tensor's buffer (values from the pool,
 * reshapes as views, parameters as ranges of the flat buffer), which buffers outlive the backward
 * (the loss terms the metrics read), each loss term's constant gradient, the fused losses' own
 * gradient buffers, and the rule context of each kind of pass.
 *
 * @module
 */

import { type Storage, storageBytes } from "../gpu/device.ts";
import type { Node, Tensor } from "../graph/graph.ts";
import type { BufferRef, Dispatch } from "../gpu/kernels.ts";
import type { ParamLayout } from "../graph/params.ts";
import { BufferPool } from "../gpu/pool.ts";
import type { BatchTargets, RuleContext } from "../graph/rules.ts";
import type { ModelPlanOptions } from "./plan.ts";

/** The storage type of a tensor's value under a precision (gradients are always f32). */
export function valueStorage(t: Tensor, precision: Storage): Storage {
  return precision === "f16" && !t.f32 ? "f16" : "f32";
}

/** Which pass a forward list is for. */
export type PassMode = "train" | "eval" | "input-grad";

/** The buffers and contexts of a plan being recorded. */
export class PlanState {
  readonly options: ModelPlanOptions;
  readonly layout: ParamLayout;
  readonly params: GPUBuffer;
  readonly params16?: GPUBuffer;
  readonly x: GPUBuffer;
  readonly labels: GPUBuffer;
  readonly input: Tensor;
  readonly pool: BufferPool;
  /** Buffers made here besides the pool's (constant gradients, loss gradients). */
  readonly owned: GPUBuffer[] = [];
  readonly #values = new Map<Tensor, BufferRef>();
  readonly #keep: Set<Tensor>;
  readonly #scale: Map<Tensor, number>;
  readonly #lossGrads = new Map<Node, GPUBuffer>();
  readonly #precision: Storage;

  constructor(options: ModelPlanOptions, layout: ParamLayout) {
    const { gpu, graph } = options;
    this.options = options;
    this.layout = layout;
    this.#precision = options.precision ?? "f32";
    const shared = options.shared;
    if (shared) {
      if (
        shared.params.size < layout.total * 4 || (this.#precision === "f16") !== !!shared.params16
      ) {
        throw new RangeError(
          `a plan over shared buffers: the parameters hold ${shared.params.size} bytes${
            shared.params16 ? " (with an f16 copy)" : ""
          }, the layout needs ${layout.total * 4} at precision ${this.#precision}`,
        );
      }
    }
    this.params = shared?.params ?? gpu.storage("parameters (flat)", layout.total * 4);
    this.params16 = shared
      ? shared.params16
      : this.#precision === "f16"
      ? gpu.storage("parameters (f16 copy)", layout.total * 2)
      : undefined;
    this.pool = new BufferPool(gpu);
    const input = graph.inputs[0];
    if (!input) throw new RangeError("the graph has no input");
    this.input = input;
    this.x = gpu.storage("batch input", input.size * storageBytes(this.storage(input)));
    this.#values.set(input, this.x);
    for (const p of graph.params) {
      this.#values.set(
        p.tensor,
        layout.range(this.params16 ?? this.params, p.tensor, this.storage(p.tensor)),
      );
    }
    this.labels = gpu.storage("batch labels", graph.batch * 4);
    // Buffers that outlive the backward: the loss terms and correct flags (the metrics read them).
    this.#keep = new Set<Tensor>([
      input,
      ...graph.losses.map((l) => l.tensor),
      ...graph.losses.flatMap((l) => (l.correct ? [l.correct] : [])),
    ]);
    const micro = options.microBatches ?? 1;
    this.#scale = new Map(graph.losses.map((l) => [l.tensor, l.weight / (l.tensor.size * micro)]));
  }

  /** The storage type of a tensor's value (a view's is its base's). */
  storage(t: Tensor): Storage {
    return valueStorage(t.view ?? t, this.#precision);
  }

  /** The buffer of a tensor's value, from the pool the first time it is asked for. */
  value(t: Tensor): BufferRef {
    if (t.view) return this.value(t.view);
    let v = this.#values.get(t);
    if (!v) {
      v = this.pool.acquire(t.size, t.name, this.storage(t));
      this.#values.set(t, v);
    }
    return v;
  }

  /** A loss term's constant gradient: weight / (elements · micro-batches). */
  termScale(t: Tensor): number {
    return this.#scale.get(t) ?? 0;
  }

  /** After a node's backward: its values are dead, unless views or kept. */
  release(node: Node): void {
    for (const t of [node.output, ...node.saved]) {
      if (t.view || this.#keep.has(t)) continue;
      const v = this.#values.get(t);
      if (v instanceof GPUBuffer) this.pool.release(v);
    }
  }

  /** A buffer of `t.size` floats all equal to `value` (a loss term's seed). */
  constantGrad(t: Tensor, value: number): GPUBuffer {
    const b = this.options.gpu.storage(
      `d ${t.name} (constant)`,
      new Float32Array(t.size).fill(value),
    );
    this.owned.push(b);
    return b;
  }

  /** `count` zeros. */
  zeros(label: string, count: number): GPUBuffer {
    const b = this.options.gpu.storage(label, count * 4);
    this.owned.push(b);
    return b;
  }

  /** The rule context of a pass (without the backward part). */
  context(mode: PassMode, validRows: number): Omit<RuleContext, "grad" | "passGrad" | "temp"> {
    const { options } = this;
    const main = options.graph.mainLoss;
    const batch: BatchTargets = {
      labels: this.labels,
      mixup: mode === "train" ? options.mixup : undefined,
      validRows,
    };
    return {
      kernels: options.kernels,
      training: mode === "train",
      value: (t) => this.value(t),
      storage: (t) => this.storage(t),
      random: (node) => ({
        seed: options.seed >>> 0,
        stream: node.id + 1,
        counters: options.counters,
        counterIndex: options.randomCounter,
      }),
      batch,
      lossGrad: (node) => this.#lossGrad(node),
      lossScale: (t) =>
        mode === "train"
          ? this.termScale(t)
          : mode === "input-grad" && t === main?.tensor
          ? 1 / Math.max(1, validRows)
          : 0,
    };
  }

  /** A forward pass of every node, in order. */
  async forward(mode: PassMode, validRows: number): Promise<Dispatch[]> {
    const out: Dispatch[] = [];
    const ctx: RuleContext = {
      ...this.context(mode, validRows),
      grad: () => undefined,
      passGrad: () => Promise.resolve([]),
      temp: () => {
        throw new Error("temp buffers exist only in backward");
      },
    };
    for (const node of this.options.graph.nodes) {
      this.value(node.output);
      for (const s of node.saved) this.value(s);
      out.push(...await this.options.ops.of(node).forward(ctx, node));
    }
    return out;
  }

  #lossGrad(node: Node): GPUBuffer {
    let b = this.#lossGrads.get(node);
    if (!b) {
      b = this.options.gpu.storage(`${node.output.name} d(predictions)`, node.inputs[0]!.size * 4);
      this.#lossGrads.set(node, b);
      this.owned.push(b);
    }
    return b;
  }
}
