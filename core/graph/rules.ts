/**
 * The op table: each op's forward and backward, side by side, one entry per op. Autodiff
 * (`core/autodiff.ts`) walks the graph backwards and calls these; plugins add ops with
 * {@link registerOp}.
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import type { BufferRef, Dispatch, KernelCache } from "../gpu/kernels.ts";
import type { Storage } from "../gpu/device.ts";
import type { MixupTargets } from "../ops/softmax_cross_entropy.ts";

export { builtinOps } from "./builtin_ops.ts";

/** The batch's targets, which loss ops read. */
export interface BatchTargets {
  /** y[rows], u32. */
  labels: GPUBuffer;
  /** Mixup's second labels and λ, in training when mixup is on. */
  mixup?: MixupTargets;
  /** Rows that count (the last evaluation batch may be partial). */
  validRows: number;
}

/** Where an input's gradient goes: write it, or add to what is there. */
export interface GradSlot {
  /** The gradient's f32 buffer or range. */
  ref: BufferRef;
  /** Add to the values there (a parameter, or a later contribution); false: overwrite them. */
  accumulate: boolean;
}

/** What the plan offers an op rule. */
export interface RuleContext {
  /** Compiles the rule's kernels and makes its dispatches. */
  readonly kernels: KernelCache;
  /** Whether dispatches are for training (dropout active) or evaluation. */
  readonly training: boolean;
  /** The buffer holding a tensor's value (activation, input, or a parameter's segment). */
  value(t: Tensor): BufferRef;
  /**
   * The element type of `value(t)`: f32, or f16 under precision "f16" (see core/plan.ts).
   * Gradients (`grad`, `passGrad`, `temp`, and backward's `dy`) are always f32.
   */
  storage(t: Tensor): Storage;
  /** Where `t`'s gradient goes, or undefined when nothing needs it. Each call is a contribution. */
  grad(t: Tensor): GradSlot | undefined;
  /** Gives `t` the gradient held in `from` (sharing the buffer when it can, else adding it). */
  passGrad(t: Tensor, from: BufferRef): Promise<Dispatch[]>;
  /** A scratch buffer of `count` floats, free again after the current backward step. */
  temp(count: number, label: string): BufferRef;
  /** The Philox key of a random op: (seed, stream) plus the GPU step counters. */
  random(node: Node): { seed: number; stream: number; counters: GPUBuffer; counterIndex: number };
  /** The batch's labels and mixup targets (loss ops). */
  readonly batch: BatchTargets;
  /**
   * The constant gradient a loss term's tensor receives, weight / (elements · micro-batches), or
   * 0 when this pass writes no gradient (evaluation without backward) or `t` is no loss term.
   */
  lossScale(t: Tensor): number;
  /** A fused loss op's own f32 gradient buffer for its predictions, made once per node. */
  lossGrad(node: Node): GPUBuffer;
}

/** An op's forward and backward. */
export interface OpRule {
  /**
   * Whether the rule handles f16 values: it passes `ctx.storage` of each value to its kernels.
   * Without it, a model using the op trains with precision "f32" only.
   */
  f16?: boolean;
  /** Computes `node.output` (and any `node.saved` tensors) from the inputs. */
  forward(ctx: RuleContext, node: Node): Promise<Dispatch[]>;
  /** Propagates `dy` (the output's gradient) to the inputs through `ctx.grad`/`ctx.passGrad`. */
  backward(ctx: RuleContext, node: Node, dy: BufferRef): Promise<Dispatch[]>;
  /**
   * Floating-point operations of the node's forward over the whole batch, a multiply-add
   * counting 2 (what the evaluation reports per sample); without it, one per output value.
   */
  flops?(node: Node): number;
}

/** Op names → rules; names are unique, and a duplicate names where both came from. */
export class OpTable {
  readonly #rules = new Map<string, { rule: OpRule; origin: string }>();

  /** A table holding `rules` (origin "built-in"). */
  constructor(rules: Record<string, OpRule> = {}) {
    for (const [name, rule] of Object.entries(rules)) this.register(name, rule);
  }

  /** Adds an op; a name already taken is an error naming both origins. */
  register(name: string, rule: OpRule, origin = "built-in"): void {
    const taken = this.#rules.get(name);
    if (taken) {
      throw new RangeError(
        `${origin}: op "${name}" is already registered (by ${taken.origin})`,
      );
    }
    this.#rules.set(name, { rule, origin });
  }

  /** Whether an op of this name is registered. */
  has(name: string): boolean {
    return this.#rules.has(name);
  }

  /** The rule of an op; an unknown op fails with the list of known ones. */
  get(name: string): OpRule {
    const entry = this.#rules.get(name);
    if (!entry) {
      throw new RangeError(
        `Cannot find op "${name}": known are ${this.names().map((k) => `"${k}"`).join(", ")}`,
      );
    }
    return entry.rule;
  }

  /** The rule of a graph node: its own, else the table's for its op name. */
  of(node: Node): OpRule {
    return node.rule ?? this.get(node.op);
  }

  /** Registered op names, sorted. */
  names(): string[] {
    return [...this.#rules.keys()].sort();
  }

  /** A copy to which more ops can be added without changing this one. */
  clone(): OpTable {
    const copy = new OpTable();
    for (const [name, { rule, origin }] of this.#rules) copy.register(name, rule, origin);
    return copy;
  }
}
