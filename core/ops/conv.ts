/**
 * Typed bindings of the convolution and pooling kernels: `wgsl/im2col.wgsl` (a k×k, stride-1,
 * zero-padded convolution's columns, and their adjoint col2im) and `wgsl/max_pool.wgsl` (s×s
 * max-pooling of channels-last images, and its backward). Each returns a {@link Dispatch} made
 * once.
 *
 * @module
 */

import {
  type BufferRef,
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import im2colSource from "../../wgsl/im2col.wgsl" with { type: "text" };
import maxPoolSource from "../../wgsl/max_pool.wgsl" with { type: "text" };

/** `wgsl/im2col.wgsl`. */
export const IM2COL_KERNEL: KernelSource = wgsl("im2col", im2colSource);
/** `wgsl/max_pool.wgsl`. */
export const MAX_POOL_KERNEL: KernelSource = wgsl("max_pool", maxPoolSource);

/** Where channel c of pixel p of an image lives: NCHW (the datasets') or NHWC (channels last). */
export type ImageLayout = "nchw" | "nhwc";

/** The shape of a convolution's columns: a batch of C×H×W images, a k×k kernel, padding. */
export interface ConvGeometry {
  batch: number;
  channels: number;
  height: number;
  width: number;
  /** The kernel side k (odd or even; stride 1). */
  kernel: number;
  /** Zeros added on every side. */
  pad: number;
  /** How the input image is laid out. */
  layout: ImageLayout;
}

/** The output side of a stride-1 convolution: H + 2·pad − k + 1. */
export function convOutSide(side: number, kernel: number, pad: number): number {
  return side + 2 * pad - kernel + 1;
}

/** The named numeric fields of `g` (the geometry, not the buffers beside it). */
function pick<T extends object, K extends keyof T>(g: T, ...keys: K[]): Record<string, number> {
  return Object.fromEntries(keys.map((k) => [k, Number(g[k])]));
}

function convUniform(kernels: KernelCache, label: string, g: ConvGeometry) {
  const sizes = {
    ...pick(g, "batch", "channels", "height", "width", "kernel"),
    "pad + 1": g.pad + 1,
  };
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  const outH = convOutSide(g.height, g.kernel, g.pad);
  const outW = convOutSide(g.width, g.kernel, g.pad);
  if (outH < 1 || outW < 1) {
    throw new RangeError(
      `${label}: a ${g.kernel}×${g.kernel} kernel with padding ${g.pad} does not fit a ${g.height}×${g.width} image`,
    );
  }
  const nchw = g.layout === "nchw";
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", g.batch],
      ["u32", g.channels],
      ["u32", g.height],
      ["u32", g.width],
      ["u32", g.kernel],
      ["u32", g.pad],
      ["u32", outH],
      ["u32", outW],
      ["u32", nchw ? g.height * g.width : 1],
      ["u32", nchw ? 1 : g.channels],
    ]),
  );
  return {
    params,
    inputs: g.batch * g.channels * g.height * g.width,
    columns: g.batch * outH * outW * g.channels * g.kernel * g.kernel,
  };
}

/** cols[B·OH·OW, C·k·k] = the k×k neighbourhoods of x (zeros outside), as `wgsl/im2col.wgsl`. */
export async function im2col(
  kernels: KernelCache,
  args: ConvGeometry & { x: BufferRef; cols: BufferRef; storage?: Storage; label?: string },
): Promise<Dispatch> {
  const label = args.label ?? "im2col";
  const { params, inputs, columns } = convUniform(kernels, label, args);
  const type = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, inputs, type], cols: [args.cols, columns, type] });
  return await kernels.dispatch({
    kernel: IM2COL_KERNEL,
    entry: "im2col",
    storage: { X_T: type },
    bindings: [args.x, args.cols, params],
    workgroups: grid(columns, 256),
    label,
  });
}

/** dx (=|+=) col2im(dcols): the adjoint of {@link im2col} (f32 gradients). */
export async function col2im(
  kernels: KernelCache,
  args: ConvGeometry & { dcols: BufferRef; dx: BufferRef; accumulate?: boolean; label?: string },
): Promise<Dispatch> {
  const label = args.label ?? "col2im";
  const { params, inputs, columns } = convUniform(kernels, label, args);
  checkBuffers(label, { dcols: [args.dcols, columns], dx: [args.dx, inputs] });
  return await kernels.dispatch({
    kernel: IM2COL_KERNEL,
    entry: "col2im",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.dcols, args.dx, params],
    workgroups: grid(inputs, 256),
    label,
  });
}

/** The shape of a max-pooling: a batch of H×W×C channels-last images, s×s windows, stride s. */
export interface PoolGeometry {
  batch: number;
  height: number;
  width: number;
  channels: number;
  /** The window side s (also the stride). */
  size: number;
}

function poolUniform(kernels: KernelCache, label: string, g: PoolGeometry) {
  const sizes = pick(g, "batch", "height", "width", "channels", "size");
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  const outH = Math.floor(g.height / g.size);
  const outW = Math.floor(g.width / g.size);
  if (outH < 1 || outW < 1) {
    throw new RangeError(
      `${label}: a ${g.size}×${g.size} window does not fit a ${g.height}×${g.width} image`,
    );
  }
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", g.batch],
      ["u32", g.height],
      ["u32", g.width],
      ["u32", g.channels],
      ["u32", g.size],
      ["u32", outH],
      ["u32", outW],
    ]),
  );
  return {
    params,
    inputs: g.batch * g.height * g.width * g.channels,
    outputs: g.batch * outH * outW * g.channels,
  };
}

/** y[B, ⌊H/s⌋, ⌊W/s⌋, C] = the maximum of each s×s window of x[B, H, W, C]. */
export async function maxPoolForward(
  kernels: KernelCache,
  args: PoolGeometry & { x: BufferRef; y: BufferRef; storage?: Storage; label?: string },
): Promise<Dispatch> {
  const label = args.label ?? "max_pool.forward";
  const { params, inputs, outputs } = poolUniform(kernels, label, args);
  const type = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, inputs, type], y: [args.y, outputs, type] });
  return await kernels.dispatch({
    kernel: MAX_POOL_KERNEL,
    entry: "forward",
    storage: { X_T: type },
    bindings: [args.x, args.y, params],
    workgroups: grid(outputs, 256),
    label,
  });
}

/** dx (=|+=) dy routed to each window's first maximum of x, 0 elsewhere (f32 gradients). */
export async function maxPoolBackward(
  kernels: KernelCache,
  args: PoolGeometry & {
    x: BufferRef;
    dy: BufferRef;
    dx: BufferRef;
    accumulate?: boolean;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "max_pool.backward";
  const { params, inputs, outputs } = poolUniform(kernels, label, args);
  const type = args.storage ?? "f32";
  const side = (v: number) => Math.ceil(v / args.size);
  const windows = args.batch * side(args.height) * side(args.width) * args.channels;
  checkBuffers(label, {
    x: [args.x, inputs, type],
    dy: [args.dy, outputs],
    dx: [args.dx, inputs],
  });
  return await kernels.dispatch({
    kernel: MAX_POOL_KERNEL,
    entry: "backward",
    storage: { X_T: type },
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.x, args.dy, params, args.dx],
    workgroups: grid(windows, 256),
    label,
  });
}
