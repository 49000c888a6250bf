/**
 * Typed bindings of `wgsl/normal.wgsl`: fill a buffer with mean + std·N(0, 1) (Box–Muller) or
 * U(low, high) from Philox keyed by (seed, stream, step, element), or add scheduled N(0, σ²)
 * noise to segments of a flat buffer ({@link normalAdd}). The kernel always reads the step from
 * `counters[counterIndex]`; for an initialisation, pass `step` instead and the binding makes a
 * one-word counter buffer holding it (once per Dispatch, like the uniform).
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import { checkRandomStream } from "./dropout.ts";
import { SEGMENT_BYTES } from "./optimizer.ts";
import src from "../../wgsl/normal.wgsl" with { type: "text" };

/** `wgsl/normal.wgsl`. */
export const NORMAL_KERNEL: KernelSource = wgsl("normal", src);

/** Where a random fill's step comes from, and the output. */
export interface RandomFillArgs {
  /** The output, `n` f32 values. */
  out: GPUBuffer;
  n: number;
  /** The run's seed, a u32. */
  seed: number;
  /** Which stream of the seed, a u32 (e.g. one per parameter tensor). */
  stream: number;
  /** Step counters read by the kernel (per-step noise); leave out to use `step`. */
  counters?: GPUBuffer;
  /** Which counter holds the step; default 0. */
  counterIndex?: number;
  /** A fixed step when `counters` is left out (an initialisation); default 0. */
  step?: number;
  label?: string;
}

async function fill(
  kernels: KernelCache,
  args: RandomFillArgs,
  entry: "normal_fill" | "uniform_fill" | "normal_add",
  a: number,
  b: number,
  add?: { scale: GPUBuffer; segments: GPUBuffer; segmentCount: number },
): Promise<Dispatch> {
  const label = args.label ?? entry;
  if (!Number.isInteger(args.n) || args.n < 0) {
    throw new RangeError(`${label}: n must be a non-negative integer, got ${args.n}`);
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    throw new RangeError(`${label}: parameters must be finite, got ${a} and ${b}`);
  }
  let counters = args.counters;
  if (counters && args.step !== undefined) {
    throw new RangeError(`${label}: give either counters or step, not both (step ${args.step})`);
  }
  if (!counters) {
    const step = args.step ?? 0;
    if (!Number.isInteger(step) || step < 0 || step > 0xFFFFFFFF) {
      throw new RangeError(`${label}: step must be an integer in [0, 2^32), got ${step}`);
    }
    counters = kernels.gpu.storage(`${label} step`, new Uint32Array([step]));
  }
  let counterIndex: number;
  try {
    counterIndex = checkRandomStream({ ...args, counters }, label);
  } catch (e) {
    if (counters !== args.counters) counters.destroy();
    throw e;
  }
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", args.n],
      ["u32", args.seed],
      ["u32", args.stream],
      ["u32", counterIndex],
      ["f32", a],
      ["f32", b],
      ["u32", add?.segmentCount ?? 0],
    ]),
  );
  return await kernels.dispatch({
    kernel: NORMAL_KERNEL,
    entry,
    bindings: [args.out, counters, params, ...(add ? [add.scale, add.segments] : [])],
    workgroups: grid(Math.ceil(args.n / 4), 256),
    label,
  });
}

/**
 * out = mean + std·z, z ~ N(0, 1) by Box–Muller from Philox words (2k, 2k+1) for elements
 * (2k, 2k+1); |z| ≤ 5.9. E.g. LeCun-normal init: mean 0, std 1/√fan_in.
 */
export function normalFill(
  kernels: KernelCache,
  args: RandomFillArgs & { mean?: number; std: number },
): Promise<Dispatch> {
  if (!(args.std >= 0)) {
    return Promise.reject(
      new RangeError(`${args.label ?? "normal_fill"}: std must be ≥ 0, got ${args.std}`),
    );
  }
  return fill(kernels, args, "normal_fill", args.mean ?? 0, args.std);
}

/**
 * out = low + (high − low)·u, u ∈ (0, 1) with 24-bit resolution. E.g. Kaiming-uniform init
 * (`nn.Linear`): low = −1/√fan_in, high = 1/√fan_in.
 */
export function uniformFill(
  kernels: KernelCache,
  args: RandomFillArgs & { low: number; high: number },
): Promise<Dispatch> {
  if (!(args.high >= args.low)) {
    return Promise.reject(
      new RangeError(
        `${args.label ?? "uniform_fill"}: high ${args.high} must be ≥ low ${args.low}`,
      ),
    );
  }
  return fill(kernels, args, "uniform_fill", args.low, args.high - args.low);
}

/** What {@link normalAdd} adds noise with. */
export interface NormalAddArgs extends RandomFillArgs {
  /** f32 std of every step, indexed by the step (the last entry for steps beyond it). */
  scale: GPUBuffer;
  /** The tensors that get noise: a segment table (core/ops/optimizer.ts `segmentTable`). */
  segments: GPUBuffer;
  /** Rows of `segments`. */
  segmentCount: number;
  /** Multiplies every std (default 1). */
  factor?: number;
}

/**
 * out[i] += factor · scale[step] · lr_mult(s) · z_i for every element i of a segment s, with z_i
 * the {@link normalFill} deviate of element i at this (seed, stream, step): per-step parameter
 * noise whose std follows a table computed once on the CPU, a fraction of each tensor's step.
 */
export function normalAdd(kernels: KernelCache, args: NormalAddArgs): Promise<Dispatch> {
  const label = args.label ?? "normal_add";
  const factor = args.factor ?? 1;
  if (!Number.isInteger(args.segmentCount) || args.segmentCount < 1) {
    return Promise.reject(
      new RangeError(`${label}: segmentCount must be an integer ≥ 1, got ${args.segmentCount}`),
    );
  }
  if (args.segments.size < args.segmentCount * SEGMENT_BYTES || args.scale.size < 4) {
    return Promise.reject(
      new RangeError(
        `${label}: segments ("${args.segments.label}") needs ${args.segmentCount} rows and scale ("${args.scale.label}") at least one f32`,
      ),
    );
  }
  if (args.out.size < 4 * args.n) {
    return Promise.reject(
      new RangeError(`${label}: out ("${args.out.label}") holds fewer than n = ${args.n} floats`),
    );
  }
  return fill(kernels, args, "normal_add", 0, factor, args);
}
