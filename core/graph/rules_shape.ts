/**
 * The built-in ops that move values between shapes: reshape (a view: no kernel, no copy), the
 * transpose of two axes, the mean over an axis, concatenation, slicing and zero-padding along the
 * last axis, and the broadcast add of a bias-like tensor — forward and backward side by side.
 *
 * @module
 */

import type { Tensor } from "./graph.ts";
import type { Dispatch } from "../gpu/kernels.ts";
import { add } from "../ops/elementwise.ts";
import { biasGrad } from "../ops/bias_grad.ts";
import { axisBroadcast, axisReduce, columns, transpose, transposeDims } from "../ops/shape.ts";
import type { OpRule } from "./rules.ts";
import { asBuffer, nodeName, rowsCols, sameStorage } from "./rule_helpers.ts";

/** reshape: the output is a view of the input's buffer (the plan maps it); dx = dy, shared. */
export const RESHAPE_RULE: OpRule = {
  f16: true,
  forward: () => Promise.resolve([]),
  flops: () => 0,
  backward: (ctx, node, dy) => ctx.passGrad(node.inputs[0]!, dy),
};

/** transpose of axes i < j: the kernel gathers; its backward is the same swap of dy. */
export const TRANSPOSE_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const [i, j] = node.attrs.axes as [number, number];
    return [
      await transpose(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        dims: transposeDims(x.shape, i, j),
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `transpose ${i}↔${j} (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    const [i, j] = node.attrs.axes as [number, number];
    return [
      await transpose(ctx.kernels, {
        x: dy,
        out: dx.ref,
        // dy is the output: its axes i and j hold x's j and i.
        dims: transposeDims(node.output.shape, i, j),
        accumulate: dx.accumulate,
        label: `transpose ${i}↔${j} backward`,
      }),
    ];
  },
};

/** x viewed as [outer, axis, inner] around the reduced axis. */
function aroundAxis(x: Tensor, axis: number) {
  const prod = (xs: readonly number[]) => xs.reduce((p, v) => p * v, 1);
  return {
    outer: prod(x.shape.slice(0, axis)),
    axis: x.shape[axis]!,
    inner: prod(x.shape.slice(axis + 1)),
  };
}

/** mean (or sum) over an axis; backward broadcasts dy back over it. */
export const MEAN_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const dims = aroundAxis(x, node.attrs.axis as number);
    return [
      await axisReduce(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        ...dims,
        scale: node.attrs.sum ? 1 : 1 / dims.axis,
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `mean over axis ${node.attrs.axis} (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    const dims = aroundAxis(x, node.attrs.axis as number);
    return [
      await axisBroadcast(ctx.kernels, {
        dy,
        dx: dx.ref,
        ...dims,
        scale: node.attrs.sum ? 1 : 1 / dims.axis,
        accumulate: dx.accumulate,
        label: `mean over axis ${node.attrs.axis} backward`,
      }),
    ];
  },
};

/** concat along the last axis: each input copied into its window; backward copies windows out. */
export const CONCAT_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [rows, outCols] = rowsCols(node.output);
    const type = sameStorage(ctx, node, [...node.inputs, node.output]);
    const out: Dispatch[] = [];
    let offset = 0;
    for (const x of node.inputs) {
      const width = rowsCols(x)[1];
      out.push(
        await columns(ctx.kernels, {
          x: ctx.value(x),
          out: ctx.value(node.output),
          mode: "copy",
          rows,
          width,
          inCols: width,
          inOffset: 0,
          outCols,
          outOffset: offset,
          storage: type,
          label: `concat ${nodeName(node)} ← ${x.name}`,
        }),
      );
      offset += width;
    }
    return out;
  },
  async backward(ctx, node, dy) {
    const [rows, outCols] = rowsCols(node.output);
    const out: Dispatch[] = [];
    let offset = 0;
    for (const x of node.inputs) {
      const width = rowsCols(x)[1];
      const dx = ctx.grad(x);
      if (dx) {
        out.push(
          await columns(ctx.kernels, {
            x: dy,
            out: dx.ref,
            mode: "copy",
            accumulate: dx.accumulate,
            rows,
            width,
            inCols: outCols,
            inOffset: offset,
            outCols: width,
            outOffset: 0,
            label: `concat backward → ${x.name}`,
          }),
        );
      }
      offset += width;
    }
    return out;
  },
};

/** slice of the last axis; backward writes dy into its window (zeros elsewhere, or adds). */
export const SLICE_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const [rows, inCols] = rowsCols(x);
    const { start, length } = node.attrs as { start: number; length: number };
    return [
      await columns(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        mode: "copy",
        rows,
        width: length,
        inCols,
        inOffset: start,
        outCols: length,
        outOffset: 0,
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `slice ${nodeName(node)}`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    const [rows, inCols] = rowsCols(x);
    const { start, length } = node.attrs as { start: number; length: number };
    const window = {
      rows,
      width: length,
      inCols: length,
      inOffset: 0,
      outCols: inCols,
      outOffset: start,
    };
    return [
      await columns(ctx.kernels, {
        x: dy,
        out: dx.ref,
        // A first contribution writes every column (zeros outside the window).
        mode: dx.accumulate ? "copy" : "pad",
        accumulate: dx.accumulate,
        ...window,
        label: `slice backward → ${x.name}`,
      }),
    ];
  },
};

/** pad of the last axis with zeros on the right; backward copies dy's first columns out. */
export const PAD_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const [rows, inCols] = rowsCols(x);
    const outCols = rowsCols(node.output)[1];
    return [
      await columns(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        mode: "pad",
        rows,
        width: inCols,
        inCols,
        inOffset: 0,
        outCols,
        outOffset: 0,
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `pad ${nodeName(node)}`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    const [rows, inCols] = rowsCols(x);
    return [
      await columns(ctx.kernels, {
        x: dy,
        out: dx.ref,
        mode: "copy",
        accumulate: dx.accumulate,
        rows,
        width: inCols,
        inCols: rowsCols(node.output)[1],
        inOffset: 0,
        outCols: inCols,
        outOffset: 0,
        label: `pad backward → ${x.name}`,
      }),
    ];
  },
};

/** a + b with b repeated over a's leading axes; db sums dy over them (the bias kernel). */
export const ADD_BROADCAST_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    return [
      await add(ctx.kernels, {
        a: asBuffer(ctx.value(a), "add input"),
        b: ctx.value(b),
        out: asBuffer(ctx.value(node.output), "add output"),
        n: a.size,
        nb: b.size,
        storage: sameStorage(ctx, node, [a, b, node.output]),
        label: `add broadcast (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const [a, b] = node.inputs as [Tensor, Tensor];
    const out = await ctx.passGrad(a, dy);
    const db = ctx.grad(b);
    if (db) {
      out.push(
        await biasGrad(ctx.kernels, {
          dy,
          db: db.ref,
          m: a.size / b.size,
          n: b.size,
          accumulate: db.accumulate,
          label: `add broadcast d${b.name}`,
        }),
      );
    }
    return out;
  },
};
