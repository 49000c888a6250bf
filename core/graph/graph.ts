/**
 * The symbolic graph a model builds once: tensors with static shapes (the batch size is fixed when
 * the graph is built, as in a static plan), parameters with their initialisation and optimizer
 * group, and nodes that apply named ops. Autodiff and the plan read it; nothing here touches the
 * GPU.
 *
 * @module
 */

import type { OpRule } from "./rules.ts";

/** How a parameter is initialised (PyTorch's conventions). */
export type Init =
  | { kind: "uniform"; bound: number }
  | { kind: "normal"; std: number }
  | { kind: "zeros" }
  | { kind: "ones" };

/** `nn.Linear`'s default: Kaiming-uniform with a = √5, i.e. U(±1/√fan_in), for weight and bias. */
export function kaimingUniform(fanIn: number): Init {
  return { kind: "uniform", bound: 1 / Math.sqrt(fanIn) };
}

/** LeCun-normal: N(0, 1/fan_in) (SELU networks, Mixer token-mixing kernels). */
export function lecunNormal(fanIn: number): Init {
  return { kind: "normal", std: 1 / Math.sqrt(fanIn) };
}

/**
 * A tensor of the graph: any rank, contiguous and row-major; `shape[0]` is the batch dimension for
 * inputs and activations.
 */
export interface Tensor {
  /** Index in {@link Graph.tensors}. */
  readonly id: number;
  /** For messages: the input's or parameter's name, or `<op>#<node id>` for a node's output. */
  readonly name: string;
  /** Dimensions (positive integers), outermost first. */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** A batch input, a parameter, or an activation (a node's output or scratch). */
  readonly kind: "input" | "param" | "activation";
  /**
   * Stored as f32 whatever the plan's precision (statistics such as LayerNorm's mean and rstd);
   * otherwise, with precision "f16", values are stored as f16 (gradients are always f32).
   */
  readonly f32?: boolean;
  /** The node that computes it (activations only). */
  producer?: Node;
  /** The parameter declaration (params only). */
  param?: Param;
  /** A reshape's output: the same values as `view` under another shape (no copy). */
  readonly view?: Tensor;
}

/** One term of the loss: `weight · mean(tensor)`, summed over the terms. */
export interface LossTerm {
  /** The values averaged: a per-row loss [rows] or a scalar [1]. */
  readonly tensor: Tensor;
  /** The term's factor in the summed loss (finite; default 1). */
  readonly weight: number;
  /** How the metrics name it (`loss/<name>`). */
  readonly name: string;
  /** The model's task loss, whose per-row correct flags give the accuracy (one per graph). */
  readonly main: boolean;
  /** The per-row correct flags (f32 1/0) of the main term, when its op makes them. */
  readonly correct?: Tensor;
}

/** A trainable tensor: a segment of the flat parameter buffer. */
export interface Param {
  /** The PyTorch `state_dict` name, e.g. `blocks.0.fc1.weight`. */
  readonly name: string;
  /** Dimensions, outermost first (its tensor's shape). */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** How its values are initialised. */
  readonly init: Init;
  /** Whether weight decay applies (biases and norm parameters: no, by default). */
  readonly decay: boolean;
  /** A learning-rate multiplier for this parameter's group. */
  readonly lrMult: number;
  /** The graph tensor that holds it. */
  readonly tensor: Tensor;
}

/** An op applied to input tensors, producing one output tensor. */
export interface Node {
  /** Index in {@link Graph.nodes}: nodes are in the order applied, a topological order. */
  readonly id: number;
  /** The op's name, looked up in the run's op table unless {@link rule} is set. */
  readonly op: string;
  /** Input tensors, in the op's order. */
  readonly inputs: readonly Tensor[];
  /** The tensor the node computes. */
  readonly output: Tensor;
  /** The op's attributes (e.g. `activation`, `eps`), as its rule reads them. */
  readonly attrs: Readonly<Record<string, unknown>>;
  /** Extra tensors the op saves for its backward (e.g. a pre-activation, LayerNorm's mean). */
  readonly saved: readonly Tensor[];
  /** The op's rule, when the node carries it (a plugin op); else the run's op table has it. */
  readonly rule?: OpRule;
}

/** Options of a parameter. */
export interface ParamOptions {
  /** Whether weight decay applies; default true. */
  decay?: boolean;
  /** Learning-rate multiplier; default 1. */
  lrMult?: number;
}

/** A model's network: built once, then planned. */
export class Graph {
  /** The batch size: `shape[0]` of every input, fixed when the graph is built. */
  readonly batch: number;
  /** Every tensor, indexed by id. */
  readonly tensors: Tensor[] = [];
  /** The parameters, in declaration order. */
  readonly params: Param[] = [];
  /** The nodes, in the order applied (inputs before the nodes that read them). */
  readonly nodes: Node[] = [];
  /** The batch inputs, in declaration order. */
  readonly inputs: Tensor[] = [];
  /** The loss: its terms, summed with their weights (see {@link addLoss}). */
  readonly losses: LossTerm[] = [];
  #names = new Set<string>();

  /** An empty graph for batches of `batch` rows (a positive integer). */
  constructor(batch: number) {
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(`batch size must be a positive integer, got ${batch}`);
    }
    this.batch = batch;
  }

  #tensor(name: string, shape: readonly number[], kind: Tensor["kind"], f32 = false): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 1) {
        throw new RangeError(
          `tensor "${name}": shape [${shape}] has a dimension that is not a positive integer`,
        );
      }
    }
    const tensor: Tensor = {
      id: this.tensors.length,
      name,
      shape: [...shape],
      size: shape.reduce((a, b) => a * b, 1),
      kind,
      ...(f32 ? { f32 } : {}),
    };
    this.tensors.push(tensor);
    return tensor;
  }

  /** A batch input of `shape` per sample (a number is [features]): shape [batch, ...shape]. */
  input(name: string, shape: number | readonly number[]): Tensor {
    const t = this.#tensor(
      name,
      [this.batch, ...(typeof shape === "number" ? [shape] : shape)],
      "input",
    );
    this.inputs.push(t);
    return t;
  }

  /**
   * A term of the loss, `weight · mean(t)` over t's elements (a per-row loss [rows], or a scalar
   * [1]); the trainer minimises the sum of the terms and logs each. `main` marks the task loss
   * (with its correct flags, for the accuracy); a graph has at most one.
   */
  addLoss(
    t: Tensor,
    weight = 1,
    options: { name?: string; main?: boolean; correct?: Tensor } = {},
  ): void {
    if (!Number.isFinite(weight)) {
      throw new RangeError(`loss "${t.name}": weight ${weight} is not finite`);
    }
    const main = options.main ?? false;
    if (main && this.losses.some((l) => l.main)) {
      throw new RangeError(`loss "${t.name}": the graph already has a main loss`);
    }
    const name = options.name ?? (main ? "main" : t.name);
    if (this.losses.some((l) => l.name === name)) {
      throw new RangeError(`loss term "${name}" is added twice`);
    }
    this.losses.push({
      tensor: t,
      weight,
      name,
      main,
      ...(options.correct ? { correct: options.correct } : {}),
    });
  }

  /** The main loss term, if any. */
  get mainLoss(): LossTerm | undefined {
    return this.losses.find((l) => l.main);
  }

  /** `x` under another shape with the same number of elements: no copy, no kernel. */
  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== x.size) {
      throw new RangeError(
        `reshape "${x.name}": [${x.shape}] (${x.size} values) cannot become [${shape}] (${size})`,
      );
    }
    const base = x.view ?? x;
    const out = this.apply("reshape", [x], shape);
    (out as { view?: Tensor }).view = base;
    return out;
  }

  /** Declares a parameter; names must be unique (they become `state_dict` keys). */
  param(name: string, shape: readonly number[], init: Init, options: ParamOptions = {}): Tensor {
    if (this.#names.has(name)) throw new RangeError(`parameter "${name}" is declared twice`);
    this.#names.add(name);
    const tensor = this.#tensor(name, shape, "param");
    const param: Param = {
      name,
      shape: tensor.shape,
      size: tensor.size,
      init,
      decay: options.decay ?? true,
      lrMult: options.lrMult ?? 1,
      tensor,
    };
    tensor.param = param;
    this.params.push(param);
    return tensor;
  }

  /**
   * An activation tensor, not produced by a node (e.g. saved state of an op); `f32` keeps it f32
   * under precision "f16" (see {@link Tensor.f32}).
   */
  scratch(name: string, shape: readonly number[], options: { f32?: boolean } = {}): Tensor {
    return this.#tensor(name, shape, "activation", options.f32 ?? false);
  }

  /**
   * Applies `op` to `inputs`, producing a tensor of `shape`. `extra.rule` attaches the op's rule to
   * the node (plugin ops), so no op table needs an entry for it; `extra.f32` keeps the output f32
   * under precision "f16" (losses, statistics).
   */
  apply(
    op: string,
    inputs: readonly Tensor[],
    shape: readonly number[],
    attrs: Record<string, unknown> = {},
    saved: readonly Tensor[] = [],
    extra: { rule?: OpRule; f32?: boolean } = {},
  ): Tensor {
    const rule = extra.rule;
    const output = this.#tensor(`${op}#${this.nodes.length}`, shape, "activation", extra.f32);
    const node: Node = {
      id: this.nodes.length,
      op,
      inputs: [...inputs],
      output,
      attrs,
      saved,
      ...(rule ? { rule } : {}),
    };
    output.producer = node;
    this.nodes.push(node);
    return output;
  }

  /** Total number of trainable values. */
  get parameterCount(): number {
    return this.params.reduce((n, p) => n + p.size, 0);
  }
}
