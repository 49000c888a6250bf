/**
 * The built-in ops of convolutional and generated networks: im2col (a k×k convolution's columns;
 * the convolution itself is im2col then `linear` with the weight viewed as [O, C·k·k]), max-pooling
 * of channels-last images, multiplication by a constant, and the ±1 binary code of row indices (an
 * index-MLP hypernetwork's input) — forward and backward side by side.
 *
 * @module
 */

import type { Tensor } from "./graph.ts";
import type { Dispatch } from "../gpu/kernels.ts";
import { col2im, type ConvGeometry, im2col, maxPoolBackward, maxPoolForward } from "../ops/conv.ts";
import { indexBits } from "../ops/index_bits.ts";
import { addInPlace, scale } from "../ops/elementwise.ts";
import type { OpRule } from "./rules.ts";
import { nodeName, sameStorage } from "./rule_helpers.ts";

/** im2col: attrs are the {@link ConvGeometry}; backward is col2im of dy into dx. */
export const IM2COL_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    return [
      await im2col(ctx.kernels, {
        ...(node.attrs as unknown as ConvGeometry),
        x: ctx.value(x),
        cols: ctx.value(node.output),
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `im2col (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const dx = ctx.grad(node.inputs[0]!);
    if (!dx) return [];
    return [
      await col2im(ctx.kernels, {
        ...(node.attrs as unknown as ConvGeometry),
        dcols: dy,
        dx: dx.ref,
        accumulate: dx.accumulate,
        label: `col2im (${nodeName(node)})`,
      }),
    ];
  },
};

/** The pooling geometry of a max_pool node: x [B, H, W, C] and the window side. */
function poolGeometry(x: Tensor, size: number) {
  const [batch, height, width, channels] = x.shape as [number, number, number, number];
  return { batch, height, width, channels, size };
}

/** max_pool over s×s windows (attr `size`) of x [B, H, W, C]; backward routes dy to the maxima. */
export const MAX_POOL_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    return [
      await maxPoolForward(ctx.kernels, {
        ...poolGeometry(x, node.attrs.size as number),
        x: ctx.value(x),
        y: ctx.value(node.output),
        storage: sameStorage(ctx, node, [x, node.output]),
        label: `max_pool (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    return [
      await maxPoolBackward(ctx.kernels, {
        ...poolGeometry(x, node.attrs.size as number),
        x: ctx.value(x),
        dy,
        dx: dx.ref,
        accumulate: dx.accumulate,
        storage: ctx.storage(x),
        label: `max_pool backward (${nodeName(node)})`,
      }),
    ];
  },
};

/** y = alpha·x (attr `alpha`, a constant); dx (=|+=) alpha·dy. */
export const SCALE_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const type = sameStorage(ctx, node, [x, node.output]);
    return [
      await scale(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        n: x.size,
        alpha: node.attrs.alpha as number,
        storage: { x: type, out: type },
        label: `scale (${nodeName(node)})`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    const dx = ctx.grad(x);
    if (!dx) return [];
    const alpha = node.attrs.alpha as number;
    const label = `scale backward (${nodeName(node)})`;
    if (!dx.accumulate) {
      return [await scale(ctx.kernels, { x: dy, out: dx.ref, n: x.size, alpha, label })];
    }
    // The scale kernel only writes: scale into scratch, then add.
    const scaled = ctx.temp(x.size, label);
    const out: Dispatch[] = [
      await scale(ctx.kernels, { x: dy, out: scaled, n: x.size, alpha, label }),
      await addInPlace(ctx.kernels, { x: scaled, acc: dx.ref, n: x.size, label: `${label} +=` }),
    ];
    return out;
  },
};

/** index_bits: no inputs; out [rows, bits] = the ±1 code of each row's index (attr `first`). */
export const INDEX_BITS_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const [rows, bits] = node.output.shape as [number, number];
    return [
      await indexBits(ctx.kernels, {
        out: ctx.value(node.output),
        rows,
        bits,
        first: (node.attrs.first as number | undefined) ?? 0,
        storage: ctx.storage(node.output),
        label: `index bits (${nodeName(node)})`,
      }),
    ];
  },
  backward: () => Promise.resolve([]),
};
