/**
 * The op table: each op's forward and backward, side by side, one entry per op. Autodiff
 * (`core/autodiff.ts`) walks the graph backwards and calls these; plugins add ops with
 * {@link registerOp}.
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import type { BufferRef, Dispatch, KernelCache } from "../gpu/kernels.ts";
import { matmul } from "../ops/matmul.ts";
import { tileFor } from "../ops/tuning.ts";
import { activationBackward, activationForward } from "../ops/activation.ts";
import { biasGrad } from "../ops/bias_grad.ts";
import {
  layernormBackwardInput,
  layernormBackwardParams,
  layernormForward,
} from "../ops/layernorm.ts";
import { add, scale } from "../ops/elementwise.ts";
import { dropoutBackward, dropoutForward } from "../ops/dropout.ts";
import type { Activation } from "../ops/activation_ids.ts";
import type { Storage } from "../gpu/device.ts";

/** Where an input's gradient goes: write it, or add to what is there. */
export interface GradSlot {
  ref: BufferRef;
  accumulate: boolean;
}

/** What the plan offers an op rule. */
export interface RuleContext {
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
}

/** An op's forward and backward. */
export interface OpRule {
  /**
   * Whether the rule handles f16 values: it passes `ctx.storage` of each value to its kernels.
   * Without it, a model using the op trains with precision "f32" only.
   */
  f16?: boolean;
  forward(ctx: RuleContext, node: Node): Promise<Dispatch[]>;
  /** Propagates `dy` (the output's gradient) to the inputs through `ctx.grad`/`ctx.passGrad`. */
  backward(ctx: RuleContext, node: Node, dy: BufferRef): Promise<Dispatch[]>;
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

function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape[t.shape.length - 1]!;
  return [t.size / cols, cols];
}

function asBuffer(ref: BufferRef, what: string): GPUBuffer {
  if (ref instanceof GPUBuffer) return ref;
  throw new RangeError(`${what} must be a whole buffer, got a range of "${ref.buffer.label}"`);
}

/** The common storage type of tensors an op reads and writes as one kind (its kernel's alias). */
function sameStorage(ctx: RuleContext, node: Node, tensors: readonly Tensor[]): Storage {
  const types = new Set(tensors.map((t) => ctx.storage(t)));
  if (types.size > 1) {
    throw new RangeError(
      `op "${node.op}" (${node.output.name}): ${
        tensors.map((t) => `${t.name} is ${ctx.storage(t)}`).join(", ")
      }; its kernel needs them of one type`,
    );
  }
  return [...types][0] ?? "f32";
}

const LINEAR_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
    const [m, k] = rowsCols(x);
    const n = w.shape[0]!;
    const pre = node.saved[0];
    const out = sameStorage(ctx, node, pre ? [node.output, pre] : [node.output]);
    return [
      await matmul(ctx.kernels, {
        a: ctx.value(x),
        b: ctx.value(w),
        c: ctx.value(node.output),
        m,
        n,
        k,
        layout: "nt",
        tile: tileFor(ctx.kernels.gpu, "nt", m, n, k),
        bias: b ? ctx.value(b) : undefined,
        pre: pre ? ctx.value(pre) : undefined,
        activation: node.attrs.activation as Activation,
        storage: {
          a: ctx.storage(x),
          b: ctx.storage(w),
          c: out,
          bias: b ? ctx.storage(b) : undefined,
        },
        label: `${w.name.replace(/\.weight$/, "")} forward`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
    const [m, k] = rowsCols(x);
    const n = w.shape[0]!;
    const name = w.name.replace(/\.weight$/, "");
    const out: Dispatch[] = [];
    let dPre = dy;
    const pre = node.saved[0];
    if (pre) {
      dPre = ctx.temp(m * n, `${name} d(pre-activation)`);
      out.push(
        await activationBackward(ctx.kernels, {
          x: asBuffer(ctx.value(pre), "pre-activation"),
          dy: asBuffer(dy, "gradient"),
          dx: asBuffer(dPre, "gradient"),
          n: m * n,
          activation: node.attrs.activation as Activation,
          storage: ctx.storage(pre),
          label: `${name} activation backward`,
        }),
      );
    }
    const dw = ctx.grad(w);
    if (dw) {
      out.push(
        await matmul(ctx.kernels, {
          a: dPre,
          b: ctx.value(x),
          c: dw.ref,
          m: n,
          n: k,
          k: m,
          layout: "tn",
          tile: tileFor(ctx.kernels.gpu, "tn", n, k, m),
          accumulate: dw.accumulate,
          storage: { b: ctx.storage(x) },
          label: `${name} dW`,
        }),
      );
    }
    const db = b ? ctx.grad(b) : undefined;
    if (db) {
      out.push(
        await biasGrad(ctx.kernels, {
          dy: asBuffer(dPre, "gradient"),
          db: db.ref,
          m,
          n,
          accumulate: db.accumulate,
          label: `${name} db`,
        }),
      );
    }
    const dx = ctx.grad(x);
    if (dx) {
      out.push(
        await matmul(ctx.kernels, {
          a: dPre,
          b: ctx.value(w),
          c: dx.ref,
          m,
          n: k,
          k: n,
          layout: "nn",
          tile: tileFor(ctx.kernels.gpu, "nn", m, k, n),
          accumulate: dx.accumulate,
          storage: { b: ctx.storage(w) },
          label: `${name} dX`,
        }),
      );
    }
    return out;
  },
};

/** LayerNorm's storage types: x and y of one type, γ and β of one type. */
function layernormStorage(ctx: RuleContext, node: Node) {
  const [x, gamma, beta] = node.inputs as [Tensor, Tensor, Tensor];
  return {
    x: sameStorage(ctx, node, [x, node.output]),
    params: sameStorage(ctx, node, [gamma, beta]),
  };
}

const LAYERNORM_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [x, gamma, beta] = node.inputs as [Tensor, Tensor, Tensor];
    const [mean, rstd] = node.saved as [Tensor, Tensor];
    const [rows, cols] = rowsCols(x);
    return [
      await layernormForward(ctx.kernels, {
        x: asBuffer(ctx.value(x), "layernorm input"),
        gamma: ctx.value(gamma),
        beta: ctx.value(beta),
        y: asBuffer(ctx.value(node.output), "layernorm output"),
        mean: asBuffer(ctx.value(mean), "layernorm mean"),
        rstd: asBuffer(ctx.value(rstd), "layernorm rstd"),
        rows,
        cols,
        eps: node.attrs.eps as number,
        storage: layernormStorage(ctx, node),
        label: `${gamma.name.replace(/\.weight$/, "")} forward`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [x, gamma, beta] = node.inputs as [Tensor, Tensor, Tensor];
    const [mean, rstd] = node.saved as [Tensor, Tensor];
    const [rows, cols] = rowsCols(x);
    const name = gamma.name.replace(/\.weight$/, "");
    const out: Dispatch[] = [];
    const dGamma = ctx.grad(gamma);
    const dBeta = ctx.grad(beta);
    if (dGamma || dBeta) {
      // One kernel writes both; a frozen one's share goes to scratch, so γ and β freeze apart.
      const scratch = (what: string) => ({ ref: ctx.temp(cols, `${name} ${what} (frozen)`) });
      const g = dGamma ?? scratch("dγ");
      const b = dBeta ?? scratch("dβ");
      out.push(
        await layernormBackwardParams(ctx.kernels, {
          x: asBuffer(ctx.value(x), "layernorm input"),
          mean: asBuffer(ctx.value(mean), "layernorm mean"),
          rstd: asBuffer(ctx.value(rstd), "layernorm rstd"),
          dy: asBuffer(dy, "gradient"),
          dgamma: g.ref,
          dbeta: b.ref,
          rows,
          cols,
          // Parameter gradients accumulate over micro-batches; scratch is never read.
          accumulate: (dGamma ?? dBeta)!.accumulate,
          storage: layernormStorage(ctx, node),
          label: `${name} dγ dβ`,
        }),
      );
    }
    const dx = ctx.grad(x);
    if (dx) {
      out.push(
        await layernormBackwardInput(ctx.kernels, {
          x: asBuffer(ctx.value(x), "layernorm input"),
          mean: asBuffer(ctx.value(mean), "layernorm mean"),
          rstd: asBuffer(ctx.value(rstd), "layernorm rstd"),
          gamma: ctx.value(gamma),
          dy: asBuffer(dy, "gradient"),
          dx: asBuffer(dx.ref, "gradient"),
          rows,
          cols,
          accumulate: dx.accumulate,
          storage: layernormStorage(ctx, node),
          label: `${name} dX`,
        }),
      );
    }
    return out;
  },
};

const ACTIVATION_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    return [
      await activationForward(ctx.kernels, {
        x: asBuffer(ctx.value(x), "activation input"),
        y: asBuffer(ctx.value(node.output), "activation output"),
        n: x.size,
        activation: node.attrs.activation as Activation,
        storage: sameStorage(ctx, node, [x, node.output]),
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    return [
      await activationBackward(ctx.kernels, {
        x: asBuffer(ctx.value(x), "activation input"),
        dy: asBuffer(dy, "gradient"),
        dx: asBuffer(dx.ref, "gradient"),
        n: x.size,
        activation: node.attrs.activation as Activation,
        accumulate: dx.accumulate,
        storage: ctx.storage(x),
      }),
    ];
  },
};

const ADD_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    return [
      await add(ctx.kernels, {
        a: asBuffer(ctx.value(a), "add input"),
        b: asBuffer(ctx.value(b), "add input"),
        out: asBuffer(ctx.value(node.output), "add output"),
        n: a.size,
        storage: sameStorage(ctx, node, [a, b, node.output]),
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    return [...await ctx.passGrad(a, dy), ...await ctx.passGrad(b, dy)];
  },
};

const DROPOUT_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const xBuf = asBuffer(ctx.value(x), "dropout input");
    const yBuf = asBuffer(ctx.value(node.output), "dropout output");
    const type = sameStorage(ctx, node, [x, node.output]);
    if (!ctx.training) {
      return [
        await scale(ctx.kernels, {
          x: xBuf,
          out: yBuf,
          n: x.size,
          alpha: 1,
          storage: { x: type, out: type },
        }),
      ];
    }
    return [
      await dropoutForward(ctx.kernels, {
        x: xBuf,
        y: yBuf,
        n: x.size,
        p: node.attrs.p as number,
        alpha: node.attrs.alpha as boolean,
        storage: type,
        ...ctx.random(node),
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    return [
      await dropoutBackward(ctx.kernels, {
        dy: asBuffer(dy, "gradient"),
        dx: asBuffer(dx.ref, "gradient"),
        n: x.size,
        p: node.attrs.p as number,
        alpha: node.attrs.alpha as boolean,
        accumulate: dx.accumulate,
        ...ctx.random(node),
      }),
    ];
  },
};

/** A new table of the built-in ops: linear, layernorm, activation, add, dropout. */
export function builtinOps(): OpTable {
  return new OpTable({
    linear: LINEAR_RULE,
    layernorm: LAYERNORM_RULE,
    activation: ACTIVATION_RULE,
    add: ADD_RULE,
    dropout: DROPOUT_RULE,
  });
}
