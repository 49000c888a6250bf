/**
 * Typed bindings of `wgsl/drop_path.wgsl`: stochastic depth's per-sample mask from Philox keyed by
 * (seed, stream, step) — the step read on the GPU from `counters[counterIndex]` — written once per
 * forward as a scale per row (1/(1−p) kept, 0 dropped), and the forward and backward products
 * with it.
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
import { checkRandomStream, type RandomStreamArgs } from "./dropout.ts";
import src from "../../wgsl/drop_path.wgsl" with { type: "text" };

/** `wgsl/drop_path.wgsl`. */
export const DROP_PATH_KERNEL: KernelSource = wgsl("drop_path", src);

/** The shape and drop probability every drop_path entry point takes. */
export interface DropPathShape {
  /** Samples: the rows of the batch axis, each kept or dropped whole. */
  rows: number;
  /** Values per sample. */
  cols: number;
  /** Drop probability, 0 ≤ p < 1. */
  p: number;
  label?: string;
}

function check(args: DropPathShape, label: string): void {
  for (const [name, v] of [["rows", args.rows], ["cols", args.cols]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be an integer ≥ 1, got ${v}`);
    }
  }
  if (!(args.p >= 0 && args.p < 1)) {
    throw new RangeError(`${label}: drop probability p must be in [0, 1), got ${args.p}`);
  }
}

function uniform(kernels: KernelCache, args: DropPathShape, label: string, key?: RandomStreamArgs) {
  return kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", args.rows],
      ["u32", args.cols],
      ["f32", args.p],
      ["u32", key?.seed ?? 0],
      ["u32", key?.stream ?? 0],
      ["u32", key?.counterIndex ?? 0],
      ["f32", 1 / (1 - args.p)],
    ]),
  );
}

/** scales[r] = keep_r ? 1/(1−p) : 0 for each row r, keep_r from Philox at this step. */
export async function dropPathScales(
  kernels: KernelCache,
  args: DropPathShape & RandomStreamArgs & { scales: GPUBuffer },
): Promise<Dispatch> {
  const label = args.label ?? "drop_path_scales";
  check(args, label);
  const counterIndex = checkRandomStream(args, label);
  checkBuffers(label, { scales: [args.scales, args.rows] });
  return await kernels.dispatch({
    kernel: DROP_PATH_KERNEL,
    entry: "drop_path_scales",
    bindings: [
      args.counters,
      args.scales,
      uniform(kernels, args, label, { ...args, counterIndex }),
    ],
    workgroups: grid(Math.ceil(args.rows / 4), 256),
    label,
  });
}

/** y = x · scales[row] (x and y of `storage`, default f32; different buffers). */
export async function dropPathForward(
  kernels: KernelCache,
  args: DropPathShape & { x: BufferRef; y: BufferRef; scales: BufferRef; storage?: Storage },
): Promise<Dispatch> {
  const label = args.label ?? "drop_path_forward";
  check(args, label);
  const type = args.storage ?? "f32";
  const n = args.rows * args.cols;
  checkBuffers(label, {
    x: [args.x, n, type],
    y: [args.y, n, type],
    scales: [args.scales, args.rows],
  });
  return await kernels.dispatch({
    kernel: DROP_PATH_KERNEL,
    entry: "drop_path_forward",
    storage: { X_T: type },
    bindings: [args.x, args.y, args.scales, uniform(kernels, args, label)],
    workgroups: grid(n, 256),
    label,
  });
}

/** dx = dy · scales[row], added to dx with `accumulate` (f32). */
export async function dropPathBackward(
  kernels: KernelCache,
  args: DropPathShape & { dy: BufferRef; dx: BufferRef; scales: BufferRef; accumulate?: boolean },
): Promise<Dispatch> {
  const label = args.label ?? "drop_path_backward";
  check(args, label);
  const n = args.rows * args.cols;
  checkBuffers(label, { dy: [args.dy, n], dx: [args.dx, n], scales: [args.scales, args.rows] });
  return await kernels.dispatch({
    kernel: DROP_PATH_KERNEL,
    entry: "drop_path_backward",
    constants: { ACCUMULATE: args.accumulate ?? false },
    bindings: [args.dy, args.dx, args.scales, uniform(kernels, args, label)],
    workgroups: grid(n, 256),
    label,
  });
}
