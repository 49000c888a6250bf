/**
 * Typed bindings of the kernels that move values between shapes: `wgsl/transpose.wgsl` (two axes
 * of an N-D tensor), `wgsl/axis_mean.wgsl` (mean or sum over an axis, and its broadcast back) and
 * `wgsl/columns.wgsl` (column windows: concatenation and slicing along the last axis). Each returns
 * a {@link Dispatch} made once.
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
import transposeSource from "../../wgsl/transpose.wgsl" with { type: "text" };
import axisMeanSource from "../../wgsl/axis_mean.wgsl" with { type: "text" };
import columnsSource from "../../wgsl/columns.wgsl" with { type: "text" };

/** `wgsl/transpose.wgsl`. */
export const TRANSPOSE_KERNEL: KernelSource = wgsl("transpose", transposeSource);
/** `wgsl/axis_mean.wgsl`. */
export const AXIS_MEAN_KERNEL: KernelSource = wgsl("axis_mean", axisMeanSource);
/** `wgsl/columns.wgsl`. */
export const COLUMNS_KERNEL: KernelSource = wgsl("columns", columnsSource);

function positive(label: string, what: Record<string, number>): void {
  for (const [name, v] of Object.entries(what)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
}

/**
 * How a shape splits around two axes `i < j`: [outer, A = shape[i], mid, B = shape[j], inner].
 */
export function transposeDims(
  shape: readonly number[],
  i: number,
  j: number,
): { outer: number; a: number; mid: number; b: number; inner: number } {
  const prod = (xs: readonly number[]) => xs.reduce((p, v) => p * v, 1);
  const [lo, hi] = i < j ? [i, j] : [j, i];
  return {
    outer: prod(shape.slice(0, lo)),
    a: shape[lo]!,
    mid: prod(shape.slice(lo + 1, hi)),
    b: shape[hi]!,
    inner: prod(shape.slice(hi + 1)),
  };
}

/**
 * out = x with axes A and B of `[outer, a, mid, b, inner]` exchanged (out is [outer, b, mid, a,
 * inner]); `accumulate` adds into out (f32 gradients).
 */
export async function transpose(
  kernels: KernelCache,
  args: {
    x: BufferRef;
    out: BufferRef;
    dims: { outer: number; a: number; mid: number; b: number; inner: number };
    accumulate?: boolean;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "transpose";
  const { outer, a, mid, b, inner } = args.dims;
  positive(label, { outer, a, mid, b, inner });
  const n = outer * a * mid * b * inner;
  const type = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, n, type], out: [args.out, n, type] });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", n], ["u32", a], ["u32", mid], ["u32", b], ["u32", inner]]),
  );
  return await kernels.dispatch({
    kernel: TRANSPOSE_KERNEL,
    storage: { X_T: type },
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.x, args.out, params],
    workgroups: grid(n, 256),
    label,
  });
}

/**
 * out[o, i] (=|+=) scale·Σ_a x[o, a, i] over x viewed as [outer, axis, inner] (scale 1/axis: the
 * mean); `accumulate` adds into out.
 */
export async function axisReduce(
  kernels: KernelCache,
  args: {
    x: BufferRef;
    out: BufferRef;
    outer: number;
    axis: number;
    inner: number;
    scale: number;
    accumulate?: boolean;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "axis_mean.reduce";
  const { outer, axis, inner } = args;
  positive(label, { outer, axis, inner });
  const type = args.storage ?? "f32";
  checkBuffers(label, {
    x: [args.x, outer * axis * inner, type],
    out: [args.out, outer * inner, type],
  });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", outer], ["u32", axis], ["u32", inner], ["f32", args.scale]]),
  );
  return await kernels.dispatch({
    kernel: AXIS_MEAN_KERNEL,
    entry: "reduce",
    storage: { X_T: type },
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.x, args.out, params],
    workgroups: grid(outer * inner, 256),
    label,
  });
}

/** dx[o, a, i] (=|+=) scale·dy[o, i] over dx viewed as [outer, axis, inner] (f32). */
export async function axisBroadcast(
  kernels: KernelCache,
  args: {
    dy: BufferRef;
    dx: BufferRef;
    outer: number;
    axis: number;
    inner: number;
    scale: number;
    accumulate?: boolean;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "axis_mean.broadcast";
  const { outer, axis, inner } = args;
  positive(label, { outer, axis, inner });
  checkBuffers(label, { dy: [args.dy, outer * inner], dx: [args.dx, outer * axis * inner] });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", outer], ["u32", axis], ["u32", inner], ["f32", args.scale]]),
  );
  return await kernels.dispatch({
    kernel: AXIS_MEAN_KERNEL,
    entry: "broadcast",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.dy, args.dx, params],
    workgroups: grid(outer * axis * inner, 256),
    label,
  });
}

/** A column window: `width` columns from `inOffset` of x[rows, inCols] to `outOffset` of out. */
export interface ColumnWindow {
  rows: number;
  width: number;
  inCols: number;
  inOffset: number;
  outCols: number;
  outOffset: number;
}

/**
 * `copy`: out's window (=|+=) x's window; `pad`: every element of out written, x's window at
 * `outOffset` and zeros elsewhere (a slice's gradient).
 */
export async function columns(
  kernels: KernelCache,
  args: ColumnWindow & {
    x: BufferRef;
    out: BufferRef;
    mode: "copy" | "pad";
    accumulate?: boolean;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? `columns.${args.mode}`;
  const { rows, width, inCols, inOffset, outCols, outOffset } = args;
  positive(label, { rows, width, inCols, outCols });
  if (inOffset + width > inCols || outOffset + width > outCols || inOffset < 0 || outOffset < 0) {
    throw new RangeError(
      `${label}: window of ${width} columns at ${inOffset} (of ${inCols}) → ${outOffset} (of ${outCols}) does not fit`,
    );
  }
  if (args.mode === "pad" && args.accumulate) {
    throw new RangeError(`${label}: pad writes every element; it does not accumulate`);
  }
  const type = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, rows * inCols, type], out: [args.out, rows * outCols, type] });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", rows],
      ["u32", width],
      ["u32", inCols],
      ["u32", inOffset],
      ["u32", outCols],
      ["u32", outOffset],
    ]),
  );
  return await kernels.dispatch({
    kernel: COLUMNS_KERNEL,
    entry: args.mode,
    storage: { X_T: type },
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.x, args.out, params],
    workgroups: grid(rows * (args.mode === "copy" ? width : outCols), 256),
    label,
  });
}
