/**
 * Typed bindings of `wgsl/layernorm.wgsl`: LayerNorm over the last dimension of X[rows, cols],
 * its input gradient and its parameter gradients. Each returns a {@link Dispatch} made once
 * (pipeline, bind group, uniform parameters) to be encoded every step.
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
import layernormSource from "../../wgsl/layernorm.wgsl" with { type: "text" };

/** `wgsl/layernorm.wgsl`. */
export const LAYERNORM_KERNEL: KernelSource = wgsl("layernorm", layernormSource);

/** ε of PyTorch's `nn.LayerNorm` default. */
export const LAYERNORM_EPS = 1e-5;

/** Invocations per workgroup of the row kernels (forward, backward_input). */
const GROUP = 256;
/** Columns per workgroup of backward_params. */
const PARAM_COLS = 16;

/** The shape shared by the three LayerNorm bindings. */
export interface LayernormShape {
  /** M: the number of rows normalised independently. */
  rows: number;
  /** C: the normalised (last) dimension. */
  cols: number;
  /** Names the dispatch and its uniform buffer. */
  label?: string;
  /**
   * Storage types: `x` of x and y, `params` of γ and β; default f32. Statistics (mean, rstd) and
   * gradients are f32, and so is all arithmetic.
   */
  storage?: { x?: Storage; params?: Storage };
}

/** The aliases of `wgsl/layernorm.wgsl` for a shape's storage types. */
function storageOf(shape: LayernormShape): { X_T: Storage; P_T: Storage } {
  return { X_T: shape.storage?.x ?? "f32", P_T: shape.storage?.params ?? "f32" };
}

/**
 * Lanes that share one row in the row kernels: about 8 values per lane, a power of two from 32
 * (a narrow row leaves the rest of the workgroup to other rows) to 256 (one row per workgroup).
 * On a software adapter (`fallback`) about 32 values per lane from 8 lanes up: there each barrier
 * of the reduction switches every lane's coroutine, so fewer lanes and levels win (2–4× at
 * 16–64 columns on llvmpipe).
 */
export function layernormThreadsPerRow(cols: number, fallback = false): number {
  let t = fallback ? 8 : 32;
  const perLane = fallback ? 32 : 8;
  while (t < GROUP && t * perLane < cols) t *= 2;
  return t;
}

function checkShape(what: string, shape: LayernormShape): void {
  for (const key of ["rows", "cols"] as const) {
    const v = shape[key];
    if (!Number.isInteger(v) || v < 1 || v >= 2 ** 32) {
      throw new RangeError(`${what}: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (shape.rows * shape.cols >= 2 ** 32) {
    throw new RangeError(
      `${what}: rows·cols = ${shape.rows * shape.cols} does not fit the kernel's u32 indices`,
    );
  }
}

function checkThreads(what: string, threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > GROUP || (threads & (threads - 1))) {
    throw new RangeError(
      `${what}: threadsPerRow must be a power of two in [1, ${GROUP}], got ${threads}`,
    );
  }
}

function params(kernels: KernelCache, label: string, shape: LayernormShape, eps: number) {
  return kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", shape.rows], ["u32", shape.cols], ["f32", eps]]),
  );
}

/**
 * y = γ⊙x̂ + β with x̂ = (x − μ)·rstd per row; writes μ to `mean` and rstd = (var + ε)^−½ to
 * `rstd` (both `rows` long) for the backward pass.
 */
export async function layernormForward(
  kernels: KernelCache,
  args: LayernormShape & {
    x: GPUBuffer;
    gamma: BufferRef;
    beta: BufferRef;
    y: GPUBuffer;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    /** Default {@link LAYERNORM_EPS}. */
    eps?: number;
    /** Lanes per row; default {@link layernormThreadsPerRow}. */
    threadsPerRow?: number;
  },
): Promise<Dispatch> {
  const label = args.label ?? "layernorm.forward";
  checkShape(label, args);
  const eps = args.eps ?? LAYERNORM_EPS;
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`${label}: eps must be finite and ≥ 0, got ${eps}`);
  }
  const { rows, cols } = args;
  const types = storageOf(args);
  checkBuffers(label, {
    x: [args.x, rows * cols, types.X_T],
    gamma: [args.gamma, cols, types.P_T],
    beta: [args.beta, cols, types.P_T],
    y: [args.y, rows * cols, types.X_T],
    mean: [args.mean, rows],
    rstd: [args.rstd, rows],
  });
  const threads = args.threadsPerRow ??
    layernormThreadsPerRow(cols, kernels.gpu.report.fallback);
  checkThreads(label, threads);
  return await kernels.dispatch({
    kernel: LAYERNORM_KERNEL,
    storage: types,
    entry: "forward",
    constants: { THREADS_PER_ROW: threads },
    bindings: [
      args.x,
      args.gamma,
      args.beta,
      args.y,
      args.mean,
      args.rstd,
      params(kernels, label, args, eps),
    ],
    workgroups: grid(rows, GROUP / threads),
    label,
  });
}

/**
 * dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)) with dx̂ = dy⊙γ, from x and the forward pass's saved
 * `mean` and `rstd`. With `accumulate`, dx += instead of = (a residual stream's gradient).
 */
export async function layernormBackwardInput(
  kernels: KernelCache,
  args: LayernormShape & {
    x: GPUBuffer;
    gamma: BufferRef;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    dy: GPUBuffer;
    dx: GPUBuffer;
    accumulate?: boolean;
    /** Lanes per row; default {@link layernormThreadsPerRow}. */
    threadsPerRow?: number;
  },
): Promise<Dispatch> {
  const label = args.label ?? "layernorm.backward_input";
  checkShape(label, args);
  const { rows, cols } = args;
  const types = storageOf(args);
  checkBuffers(label, {
    x: [args.x, rows * cols, types.X_T],
    gamma: [args.gamma, cols, types.P_T],
    mean: [args.mean, rows],
    rstd: [args.rstd, rows],
    dy: [args.dy, rows * cols],
    dx: [args.dx, rows * cols],
  });
  const threads = args.threadsPerRow ??
    layernormThreadsPerRow(cols, kernels.gpu.report.fallback);
  checkThreads(label, threads);
  return await kernels.dispatch({
    kernel: LAYERNORM_KERNEL,
    storage: types,
    entry: "backward_input",
    constants: { THREADS_PER_ROW: threads, ACCUMULATE: args.accumulate ?? false },
    bindings: [
      args.x,
      args.gamma,
      args.mean,
      args.rstd,
      args.dy,
      args.dx,
      params(kernels, label, args, 0),
    ],
    workgroups: grid(rows, GROUP / threads),
    label,
  });
}

/**
 * dγ = Σ_rows dy⊙x̂ and dβ = Σ_rows dy (both `cols` long), from x and the saved `mean` and
 * `rstd`. With `accumulate`, += instead of = (gradient accumulation over micro-batches).
 */
export async function layernormBackwardParams(
  kernels: KernelCache,
  args: LayernormShape & {
    x: GPUBuffer;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    dy: GPUBuffer;
    dgamma: BufferRef;
    dbeta: BufferRef;
    accumulate?: boolean;
  },
): Promise<Dispatch> {
  const label = args.label ?? "layernorm.backward_params";
  checkShape(label, args);
  const { rows, cols } = args;
  const types = storageOf(args);
  checkBuffers(label, {
    x: [args.x, rows * cols, types.X_T],
    mean: [args.mean, rows],
    rstd: [args.rstd, rows],
    dy: [args.dy, rows * cols],
    dgamma: [args.dgamma, cols],
    dbeta: [args.dbeta, cols],
  });
  return await kernels.dispatch({
    kernel: LAYERNORM_KERNEL,
    storage: types,
    entry: "backward_params",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [
      args.x,
      args.dgamma,
      args.mean,
      args.rstd,
      args.dy,
      args.dbeta,
      params(kernels, label, args, 0),
    ],
    workgroups: grid(cols, PARAM_COLS),
    label,
  });
}
