/**
 * The dense built-in ops: linear (any rank over the last axis; the weight may be any tensor),
 * batched matmul, LayerNorm, activations, residual add and dropout — forward and backward side by
 * side.
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import type { BufferRef, Dispatch } from "../gpu/kernels.ts";
import { axisReduce } from "../ops/shape.ts";
import { matmul } from "../ops/matmul.ts";
import { tileFor } from "../ops/tuning.ts";
import { activationBackward, activationForward } from "../ops/activation.ts";
import { biasGrad } from "../ops/bias_grad.ts";
import {
  layernormBackwardInput,
  layernormBackwardParams,
  layernormForward,
} from "../ops/layernorm.ts";
import { add, addInPlace, scale } from "../ops/elementwise.ts";
import { dropoutBackward, dropoutForward } from "../ops/dropout.ts";
import type { Activation } from "../ops/activation_ids.ts";
import type { GradSlot, OpRule, RuleContext } from "./rules.ts";
import { asBuffer, nodeName, rowsCols, sameStorage } from "./rule_helpers.ts";
import { weightGradient } from "./weight_grad.ts";

export const LINEAR_RULE: OpRule = {
  f16: true,
  // x·Wᵀ, then the bias and the activation once per output value.
  flops(node) {
    const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
    const [m, k] = rowsCols(x);
    const n = w.shape[0]!;
    const epilogue = (b ? 1 : 0) + (node.attrs.activation === "identity" ? 0 : 1);
    return 2 * m * k * n + epilogue * m * n;
  },
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
        label: `${nodeName(node)} forward`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
    const [m, k] = rowsCols(x);
    const n = w.shape[0]!;
    const name = nodeName(node);
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
    const split = node.attrs.splitRows as number | undefined;
    if (dw && split !== undefined && m % split === 0 && m > split) {
      out.push(...await splitWeightGrad(ctx, { dPre, x, m, n, k, split, dw, name }));
    } else if (dw) {
      out.push(
        ...await weightGradient(ctx, {
          dy: dPre,
          x: ctx.value(x),
          xStorage: ctx.storage(x),
          dw,
          rows: m,
          out: n,
          inFeatures: k,
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

/**
 * The tile of a partial product: on a software adapter a gradient of ≤ 8 rows (a small
 * convolution's [O, C·9]) takes direct 8 × 8 register tiles in workgroups of two, which ran its
 * partial products 2.5–8× faster than the 16 × 16 small-product default (llvmpipe, 128 partials:
 * [8, 9] over 784 rows 143 against 1205 ms, [8, 36] over 196 rows 92 against 228 ms, under
 * load); elsewhere the tuned or default tile.
 */
function splitTile(ctx: RuleContext, n: number, k: number, split: number) {
  if (ctx.kernels.gpu.report.fallback && n <= 8) {
    return { strategy: "direct" as const, m: 8, n: 16, k: 1, threadM: 8, threadN: 8 };
  }
  return tileFor(ctx.kernels.gpu, "tn", n, k, split);
}

/**
 * dW = dPreᵀ·x over many rows (a convolution's columns: batch × pixels) as `m / split` partial
 * products of `split` rows each, summed after: the long reduction over rows then runs in
 * parallel instead of in the few invocations a small [n, k] output has.
 */
async function splitWeightGrad(
  ctx: RuleContext,
  args: {
    dPre: BufferRef;
    x: Tensor;
    m: number;
    n: number;
    k: number;
    split: number;
    dw: GradSlot;
    name: string;
  },
): Promise<Dispatch[]> {
  const { dPre, x, m, n, k, split, dw, name } = args;
  const parts = m / split;
  const partial = ctx.temp(parts * n * k, `${name} dW partials`);
  const sum = dw.accumulate ? ctx.temp(n * k, `${name} dW`) : dw.ref;
  const out = [
    await matmul(ctx.kernels, {
      a: dPre,
      b: ctx.value(x),
      c: partial,
      m: n,
      n: k,
      k: split,
      layout: "tn",
      tile: splitTile(ctx, n, k, split),
      batch: { count: parts, strideA: split * n, strideB: split * k, strideC: n * k },
      storage: { b: ctx.storage(x) },
      label: `${name} dW (${parts} partial products)`,
    }),
    await axisReduce(ctx.kernels, {
      x: partial,
      out: sum,
      outer: 1,
      axis: parts,
      inner: n * k,
      scale: 1,
      label: `${name} dW (sum of partials)`,
    }),
  ];
  if (dw.accumulate) {
    out.push(
      await addInPlace(ctx.kernels, { x: sum, acc: dw.ref, n: n * k, label: `${name} dW +=` }),
    );
  }
  return out;
}

/** LayerNorm's storage types: x and y of one type, γ and β of one type. */
function layernormStorage(ctx: RuleContext, node: Node) {
  const [x, gamma, beta] = node.inputs as [Tensor, Tensor, Tensor];
  return {
    x: sameStorage(ctx, node, [x, node.output]),
    params: sameStorage(ctx, node, [gamma, beta]),
  };
}

export const LAYERNORM_RULE: OpRule = {
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

export const ACTIVATION_RULE: OpRule = {
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

export const ADD_RULE: OpRule = {
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

export const DROPOUT_RULE: OpRule = {
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
    // In evaluation dropout is the identity, and so is its gradient.
    if (!ctx.training) return await ctx.passGrad(x, dy);
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

/**
 * Batched matmul `[…, M, K] × [K, N]` (b shared) or `[B, M, K] × [B, K, N]`: one dispatch with a
 * batch of products; backward dA = dC·Bᵀ (nt), dB = Aᵀ·dC (tn), batched alike (a shared b's
 * gradient sums over the batch as one product of K = B·M).
 */
export const MATMUL_RULE: OpRule = {
  f16: true,
  flops(node) {
    const { m, n, k, batch } = node.attrs as { m: number; n: number; k: number; batch: number };
    return 2 * batch * m * n * k;
  },
  async forward(ctx, node) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    const { m, n, k, batch, shared } = node.attrs as {
      m: number;
      n: number;
      k: number;
      batch: number;
      shared: boolean;
    };
    // A shared b is one [B·M, K]·[K, N] product.
    const rows = shared ? batch * m : m;
    const count = shared ? 1 : batch;
    return [
      await matmul(ctx.kernels, {
        a: ctx.value(a),
        b: ctx.value(b),
        c: ctx.value(node.output),
        m: rows,
        n,
        k,
        layout: "nn",
        tile: tileFor(ctx.kernels.gpu, "nn", rows, n, k),
        batch: { count, strideA: rows * k, strideB: k * n, strideC: rows * n },
        storage: {
          a: ctx.storage(a),
          b: ctx.storage(b),
          c: sameStorage(ctx, node, [node.output]),
        },
        label: `matmul ${nodeName(node)}`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    const { m, n, k, batch, shared } = node.attrs as {
      m: number;
      n: number;
      k: number;
      batch: number;
      shared: boolean;
    };
    const rows = shared ? batch * m : m;
    const count = shared ? 1 : batch;
    const out: Dispatch[] = [];
    const da = ctx.grad(a);
    if (da) {
      // dA[rows, K] = dC[rows, N] · B[K, N]ᵀ
      out.push(
        await matmul(ctx.kernels, {
          a: dy,
          b: ctx.value(b),
          c: da.ref,
          m: rows,
          n: k,
          k: n,
          layout: "nt",
          tile: tileFor(ctx.kernels.gpu, "nt", rows, k, n),
          batch: { count, strideA: rows * n, strideB: k * n, strideC: rows * k },
          accumulate: da.accumulate,
          storage: { b: ctx.storage(b) },
          label: `matmul ${nodeName(node)} dA`,
        }),
      );
    }
    const db = ctx.grad(b);
    if (db) {
      // dB[K, N] = A[rows, K]ᵀ · dC[rows, N] (shared: the whole batch at once).
      out.push(
        await matmul(ctx.kernels, {
          a: ctx.value(a),
          b: dy,
          c: db.ref,
          m: k,
          n,
          k: rows,
          layout: "tn",
          tile: tileFor(ctx.kernels.gpu, "tn", k, n, rows),
          batch: { count, strideA: rows * k, strideB: rows * n, strideC: k * n },
          accumulate: db.accumulate,
          storage: { a: ctx.storage(a) },
          label: `matmul ${nodeName(node)} dB`,
        }),
      );
    }
    return out;
  },
};
