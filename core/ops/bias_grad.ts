/**
 * Typed binding of `wgsl/bias_grad.wgsl`: the gradient of a bias broadcast over the rows of an
 * [m, n] output, db[j] = Σ_i dy[i, j] (or += for gradient accumulation), as one {@link Dispatch}
 * made once (pipeline, bind group, uniform parameters) to be encoded every step. Buffers may be
 * whole buffers or ranges of one ({@link BufferRef}), e.g. db inside the flat gradient buffer.
 *
 * @module
 */

import {
  type BufferRef,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  refLabel,
  refSize,
  wgsl,
} from "../gpu/kernels.ts";
import biasGradSource from "../../wgsl/bias_grad.wgsl" with { type: "text" };

/** `wgsl/bias_grad.wgsl`. */
export const BIAS_GRAD_KERNEL: KernelSource = wgsl("bias_grad", biasGradSource);

/** Arguments of {@link biasGrad}. */
export interface BiasGradArgs {
  /** Gradient of the [m, n] output, row-major float32. */
  dy: BufferRef;
  /** Gradient of the bias, n float32 values; in another buffer than `dy`. */
  db: BufferRef;
  /** Rows (the dimension summed over). */
  m: number;
  /** Columns (the bias length). */
  n: number;
  /** db += Σ_i dy[i, ·] instead of db = Σ_i dy[i, ·] (gradient accumulation). */
  accumulate?: boolean;
  /**
   * Columns per workgroup (the COLS override, for tuning): a power of two in [1, 256]; default
   * {@link biasGradColumns}(n).
   */
  columns?: number;
  label?: string;
}

/**
 * The default columns per workgroup for n columns: at least 8 (32-byte row segments per read) and
 * doubled up to 64 while that still leaves ≥ 128 workgroups to spread over a GPU's cores; for
 * n < 8 the next power of two ≥ n, so no row lane is left without a column.
 */
export function biasGradColumns(n: number): number {
  let cols = 8;
  while (cols < 64 && n / (2 * cols) >= 128) cols *= 2;
  while (cols > 1 && cols / 2 >= n) cols /= 2;
  return cols;
}

/** db[j] = Σ_i dy[i, j] over the m rows of a row-major dy[m, n] (or += with `accumulate`). */
export function biasGrad(kernels: KernelCache, args: BiasGradArgs): Promise<Dispatch> {
  const { m, n } = args;
  const label = args.label ?? "bias_grad";
  for (const [name, value] of [["m", m], ["n", n]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xFFFFFFFF) {
      throw new RangeError(`${label}: ${name} must be an integer in [0, 2^32), got ${value}`);
    }
  }
  const cols = args.columns ?? biasGradColumns(n);
  if (!Number.isInteger(cols) || cols < 1 || cols > 256 || (cols & (cols - 1)) !== 0) {
    throw new RangeError(`${label}: columns must be a power of two in [1, 256], got ${cols}`);
  }
  for (const [name, ref, count] of [["dy", args.dy, m * n], ["db", args.db, n]] as const) {
    if (refSize(ref) < 4 * count) {
      throw new RangeError(
        `${label}: buffer ${name} ("${refLabel(ref)}") holds ${refSize(ref)} bytes, ` +
          `fewer than ${count} floats (m=${m}, n=${n})`,
      );
    }
  }
  // WebGPU forbids one buffer (even disjoint ranges of it) bound both writable and read-only.
  const bufferOf = (ref: BufferRef) => ref instanceof GPUBuffer ? ref : ref.buffer;
  if (bufferOf(args.dy) === bufferOf(args.db)) {
    throw new RangeError(
      `${label}: buffer "${bufferOf(args.db).label}" is bound as db (written) and dy (read)`,
    );
  }
  const params = kernels.gpu.uniform(`${label} params`, packUniform([["u32", m], ["u32", n]]));
  return kernels.dispatch({
    kernel: BIAS_GRAD_KERNEL,
    entry: "bias_grad",
    constants: { COLS: cols, ACCUMULATE: args.accumulate ?? false },
    bindings: [args.dy, args.db, params],
    workgroups: grid(n, cols),
    label,
  });
}
