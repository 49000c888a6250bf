/**
 * The Fast Feedforward ops (algorithms.md §8), which `nn.fff` applies in this order:
 * - `fff_nodes`: the node logits z = x·W_nodesᵀ + b_nodes [rows, N], a linear layer in training;
 *   nothing in evaluation, where the hard path computes only the D nodes it visits;
 * - `fff_entropy`: the hardening loss's per-row mean node entropy [rows] (an auxiliary loss term),
 *   training only;
 * - `fff`: in training the soft mixture y = Σ_ℓ c_ℓ(x)·(W2_ℓ·relu(W1_ℓx + b1_ℓ) + b2_ℓ), computed as
 *   one dense product of all the leaves' hidden units, each leaf's units weighted by its mixture
 *   weight c_ℓ (region leak on the node probabilities); in evaluation the hard path
 *   (`wgsl/fff.wgsl` fff_hard): per row one leaf, and only its weights are read.
 * Forward and backward side by side, as in rules_dense.ts. The evaluation pass has no backward
 * (the hard path's routing has no gradient): an input-gradient pass over an fff model is an error.
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import type { Dispatch } from "../gpu/kernels.ts";
import { matmul } from "../ops/matmul.ts";
import { tileFor } from "../ops/tuning.ts";
import { activationBackward } from "../ops/activation.ts";
import { biasGrad } from "../ops/bias_grad.ts";
import {
  fffEntropy,
  fffEntropyBackward,
  fffGate,
  fffGateBackward,
  fffHard,
  fffMixture,
  fffMixtureBackward,
  fffProbs,
  fffSizes,
} from "../ops/fff.ts";
import type { OpRule, RuleContext } from "./rules.ts";
import { LINEAR_RULE } from "./rules_dense.ts";
import { asBuffer, nodeName } from "./rule_helpers.ts";

/** The attributes `nn.fff` gives its `fff` node. */
export interface FffAttrs {
  name: string;
  depth: number;
  width: number;
  inputs: number;
  outputs: number;
  leak: number;
}

function noEvalBackward(node: Node): never {
  throw new RangeError(
    `fff "${
      nodeName(node)
    }": the evaluation pass takes one hard path per sample, which has no gradient to its routing; input gradients (adversarial evaluation) need a model without fff layers`,
  );
}

/** z = x·Wᵀ + b in training (the soft mixture reads every node); no work in evaluation. */
export const FFF_NODES_RULE: OpRule = {
  forward(ctx, node) {
    return ctx.training ? LINEAR_RULE.forward(ctx, node) : Promise.resolve([]);
  },
  backward(ctx, node, dy) {
    if (!ctx.training) noEvalBackward(node);
    return LINEAR_RULE.backward(ctx, node, dy);
  },
};

/** The mean node entropy of each row [rows], for the hardening loss; training only. */
export const FFF_ENTROPY_RULE: OpRule = {
  async forward(ctx, node) {
    if (!ctx.training) return [];
    const z = node.inputs[0]!;
    return [
      await fffEntropy(ctx.kernels, {
        rows: node.output.size,
        depth: node.attrs.depth as number,
        z: ctx.value(z),
        entropy: ctx.value(node.output),
        label: `${nodeName(node)} entropy`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    if (!ctx.training) return [];
    const z = node.inputs[0]!;
    const dz = ctx.grad(z);
    if (!dz) return [];
    return [
      await fffEntropyBackward(ctx.kernels, {
        rows: node.output.size,
        depth: node.attrs.depth as number,
        z: ctx.value(z),
        dentropy: dy,
        dz: dz.ref,
        accumulate: dz.accumulate,
        label: `${nodeName(node)} entropy backward`,
      }),
    ];
  },
};

function parts(node: Node) {
  const [x, z, w1, b1, w2, b2, nodeW, nodeB] = node.inputs as Tensor[];
  const [probs, mix, pre, hidden, gated] = node.saved as Tensor[];
  const a = node.attrs as unknown as FffAttrs;
  const rows = x!.size / a.inputs;
  const { leaves } = fffSizes(a.depth);
  return {
    x: x!,
    z: z!,
    w1: w1!,
    b1: b1!,
    w2: w2!,
    b2: b2!,
    nodeW: nodeW!,
    nodeB: nodeB!,
    probs: probs!,
    mix: mix!,
    pre: pre!,
    hidden: hidden!,
    gated: gated!,
    a,
    rows,
    leaves,
    wide: leaves * a.width,
  };
}

async function softForward(ctx: RuleContext, node: Node): Promise<Dispatch[]> {
  const p = parts(node);
  const { a, rows, leaves, wide } = p;
  const gpu = ctx.kernels.gpu;
  const name = nodeName(node);
  const shape = { rows, depth: a.depth, width: a.width };
  const v = (t: Tensor) => ctx.value(t);
  return [
    await fffProbs(ctx.kernels, {
      ...shape,
      z: v(p.z),
      probs: v(p.probs),
      leak: a.leak,
      ...ctx.random(node),
      label: `${name} node probabilities`,
    }),
    await fffMixture(ctx.kernels, {
      ...shape,
      probs: v(p.probs),
      mix: v(p.mix),
      label: `${name} mixture`,
    }),
    await matmul(ctx.kernels, {
      a: v(p.x),
      b: v(p.w1),
      c: v(p.hidden),
      m: rows,
      n: wide,
      k: a.inputs,
      layout: "nt",
      tile: tileFor(gpu, "nt", rows, wide, a.inputs),
      bias: v(p.b1),
      pre: v(p.pre),
      activation: "relu",
      label: `${name} leaves' hidden`,
    }),
    await fffGate(ctx.kernels, {
      ...shape,
      hidden: v(p.hidden),
      mix: v(p.mix),
      gated: v(p.gated),
      label: `${name} gate`,
    }),
    await matmul(ctx.kernels, {
      a: v(p.gated),
      b: v(p.w2),
      c: v(node.output),
      m: rows,
      n: a.outputs,
      k: wide,
      layout: "nt",
      tile: tileFor(gpu, "nt", rows, a.outputs, wide),
      label: `${name} leaves' output`,
    }),
    // + Σ_ℓ c_ℓ·b2_ℓ: mix [rows, L] · b2 [L, out].
    await matmul(ctx.kernels, {
      a: v(p.mix),
      b: v(p.b2),
      c: v(node.output),
      m: rows,
      n: a.outputs,
      k: leaves,
      layout: "nn",
      tile: tileFor(gpu, "nn", rows, a.outputs, leaves),
      accumulate: true,
      label: `${name} leaves' output bias`,
    }),
  ];
}

async function hardForward(ctx: RuleContext, node: Node): Promise<Dispatch[]> {
  const p = parts(node);
  const v = (t: Tensor) => ctx.value(t);
  return [
    await fffHard(ctx.kernels, {
      rows: p.rows,
      depth: p.a.depth,
      width: p.a.width,
      inputs: p.a.inputs,
      outputs: p.a.outputs,
      x: v(p.x),
      y: v(node.output),
      nodeW: v(p.nodeW),
      nodeB: v(p.nodeB),
      w1: v(p.w1),
      b1: v(p.b1),
      w2: v(p.w2),
      b2: v(p.b2),
      label: `${nodeName(node)} hard path`,
    }),
  ];
}

async function softBackward(
  ctx: RuleContext,
  node: Node,
  dy: Parameters<OpRule["backward"]>[2],
): Promise<Dispatch[]> {
  const p = parts(node);
  const { a, rows, leaves, wide } = p;
  const gpu = ctx.kernels.gpu;
  const name = nodeName(node);
  const v = (t: Tensor) => ctx.value(t);
  const out: Dispatch[] = [];
  const dw2 = ctx.grad(p.w2);
  if (dw2) {
    out.push(
      await matmul(ctx.kernels, {
        a: dy,
        b: v(p.gated),
        c: dw2.ref,
        m: a.outputs,
        n: wide,
        k: rows,
        layout: "tn",
        tile: tileFor(gpu, "tn", a.outputs, wide, rows),
        accumulate: dw2.accumulate,
        label: `${name} dW2`,
      }),
    );
  }
  const db2 = ctx.grad(p.b2);
  if (db2) {
    out.push(
      await matmul(ctx.kernels, {
        a: v(p.mix),
        b: dy,
        c: db2.ref,
        m: leaves,
        n: a.outputs,
        k: rows,
        layout: "tn",
        tile: tileFor(gpu, "tn", leaves, a.outputs, rows),
        accumulate: db2.accumulate,
        label: `${name} db2`,
      }),
    );
  }
  const dz = ctx.grad(p.z);
  const dw1 = ctx.grad(p.w1);
  const db1 = ctx.grad(p.b1);
  const dx = ctx.grad(p.x);
  if (!dz && !dw1 && !db1 && !dx) return out;
  const dgated = ctx.temp(rows * wide, `${name} d(gated)`);
  const dmix = ctx.temp(rows * leaves, `${name} d(mixture)`);
  const dhidden = ctx.temp(rows * wide, `${name} d(hidden)`);
  const dpre = ctx.temp(rows * wide, `${name} d(pre-activation)`);
  out.push(
    await matmul(ctx.kernels, {
      a: dy,
      b: v(p.w2),
      c: dgated,
      m: rows,
      n: wide,
      k: a.outputs,
      layout: "nn",
      tile: tileFor(gpu, "nn", rows, wide, a.outputs),
      label: `${name} d(gated)`,
    }),
    // dmix = dy·b2ᵀ, then the gate adds Σ_j hidden·dgated.
    await matmul(ctx.kernels, {
      a: dy,
      b: v(p.b2),
      c: dmix,
      m: rows,
      n: leaves,
      k: a.outputs,
      layout: "nt",
      tile: tileFor(gpu, "nt", rows, leaves, a.outputs),
      label: `${name} d(mixture) from b2`,
    }),
    await fffGateBackward(ctx.kernels, {
      rows,
      depth: a.depth,
      width: a.width,
      hidden: v(p.hidden),
      mix: v(p.mix),
      dgated,
      dhidden,
      dmix,
      label: `${name} gate backward`,
    }),
    await activationBackward(ctx.kernels, {
      x: asBuffer(v(p.pre), "fff pre-activation"),
      dy: asBuffer(dhidden, "gradient"),
      dx: asBuffer(dpre, "gradient"),
      n: rows * wide,
      activation: "relu",
      label: `${name} relu backward`,
    }),
  );
  if (dw1) {
    out.push(
      await matmul(ctx.kernels, {
        a: dpre,
        b: v(p.x),
        c: dw1.ref,
        m: wide,
        n: a.inputs,
        k: rows,
        layout: "tn",
        tile: tileFor(gpu, "tn", wide, a.inputs, rows),
        accumulate: dw1.accumulate,
        label: `${name} dW1`,
      }),
    );
  }
  if (db1) {
    out.push(
      await biasGrad(ctx.kernels, {
        dy: asBuffer(dpre, "gradient"),
        db: db1.ref,
        m: rows,
        n: wide,
        accumulate: db1.accumulate,
        label: `${name} db1`,
      }),
    );
  }
  if (dx) {
    out.push(
      await matmul(ctx.kernels, {
        a: dpre,
        b: v(p.w1),
        c: dx.ref,
        m: rows,
        n: a.inputs,
        k: wide,
        layout: "nn",
        tile: tileFor(gpu, "nn", rows, a.inputs, wide),
        accumulate: dx.accumulate,
        label: `${name} dX`,
      }),
    );
  }
  if (dz) {
    out.push(
      await fffMixtureBackward(ctx.kernels, {
        rows,
        depth: a.depth,
        probs: v(p.probs),
        dmix,
        dz: dz.ref,
        accumulate: dz.accumulate,
        leak: a.leak,
        ...ctx.random(node),
        label: `${name} mixture backward`,
      }),
    );
  }
  return out;
}

/** The layer's output: the soft mixture in training, one hard path per row in evaluation. */
export const FFF_RULE: OpRule = {
  forward(ctx, node) {
    return ctx.training ? softForward(ctx, node) : hardForward(ctx, node);
  },
  backward(ctx, node, dy) {
    if (!ctx.training) noEvalBackward(node);
    return softBackward(ctx, node, dy);
  },
};
