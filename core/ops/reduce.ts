/**
 * Typed binding of `wgsl/reduce.wgsl`: per-segment sums and sums of squares of a flat buffer (for
 * gradient norms and loss/accuracy metrics), as two dispatches made once and encoded every step.
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
import reduceSource from "../../wgsl/reduce.wgsl" with { type: "text" };

/** `wgsl/reduce.wgsl`. */
export const REDUCE_KERNEL: KernelSource = wgsl("reduce", reduceSource);

/** Values per chunk of the first stage: 256 invocations × 16 values (must match the WGSL). */
export const REDUCE_CHUNK = 256 * 16;

/** How the values of the segments are cut into chunks, each inside one segment. */
export interface ReducePlan {
  /** [start, end) of each chunk, interleaved: 2·K values. */
  chunks: Uint32Array;
  /** S + 1 values: segment s owns chunks [segmentChunks[s], segmentChunks[s+1]). */
  segmentChunks: Uint32Array;
}

/**
 * Cuts segments `[offsets[s], offsets[s+1])` into chunks of at most `chunk` values that never
 * span two segments; an empty segment gets no chunk.
 */
export function reducePlan(offsets: readonly number[], chunk = REDUCE_CHUNK): ReducePlan {
  const segments = offsets.length - 1;
  const segmentChunks = new Uint32Array(segments + 1);
  let count = 0;
  for (let s = 0; s < segments; s++) {
    segmentChunks[s] = count;
    count += Math.ceil((offsets[s + 1]! - offsets[s]!) / chunk);
  }
  segmentChunks[segments] = count;
  const chunks = new Uint32Array(2 * count);
  let k = 0;
  for (let s = 0; s < segments; s++) {
    for (let start = offsets[s]!; start < offsets[s + 1]!; start += chunk) {
      chunks[2 * k] = start;
      chunks[2 * k + 1] = Math.min(start + chunk, offsets[s + 1]!);
      k++;
    }
  }
  return { chunks, segmentChunks };
}

/** What {@link segmentReduce} reduces and where the sums go. */
export interface SegmentReduceArgs {
  /** The flat f32 input. */
  x: GPUBuffer;
  /**
   * S + 1 non-decreasing element offsets into x: segment s is x[offsets[s] .. offsets[s+1]).
   * Empty segments are allowed and sum to 0; [0, n] is the whole buffer of n values.
   */
  offsets: readonly number[];
  /** S sums are written at out[outOffset .. outOffset + S). */
  out: GPUBuffer;
  /** Element offset into `out`; default 0. */
  outOffset?: number;
  /** Σx² instead of Σx. */
  square?: boolean;
  /** out += sum instead of =, e.g. to accumulate a loss over steps without readback. */
  accumulate?: boolean;
  /** Buffers created here (chunk tables, partial sums, uniforms) are appended, to be destroyed. */
  owned?: GPUBuffer[];
  label?: string;
}

function checkOffsets(label: string, offsets: readonly number[], n: number): void {
  if (offsets.length < 2) {
    throw new RangeError(
      `${label}: offsets needs at least 2 values (S + 1 for S segments), got ${offsets.length}`,
    );
  }
  offsets.forEach((o, s) => {
    if (!Number.isInteger(o) || o < 0 || o > n) {
      throw new RangeError(`${label}: offsets[${s}] = ${o} is not an integer in [0, ${n}]`);
    }
    if (s > 0 && o < offsets[s - 1]!) {
      throw new RangeError(
        `${label}: offsets must not decrease, but offsets[${s}] = ${o} < offsets[${s - 1}] = ${
          offsets[s - 1]
        }`,
      );
    }
  });
}

/**
 * Per-segment Σx (or Σx² with `square`) of `x` into `out`: two dispatches, partial sums over
 * chunks then one sum per segment, to be encoded in this order.
 */
export async function segmentReduce(
  kernels: KernelCache,
  args: SegmentReduceArgs,
): Promise<Dispatch[]> {
  const label = args.label ?? "segment_reduce";
  const gpu = kernels.gpu;
  checkOffsets(label, args.offsets, Math.floor(args.x.size / 4));
  const segments = args.offsets.length - 1;
  const outOffset = args.outOffset ?? 0;
  if (!Number.isInteger(outOffset) || outOffset < 0) {
    throw new RangeError(`${label}: outOffset must be a non-negative integer, got ${outOffset}`);
  }
  if (args.out.size < (outOffset + segments) * 4) {
    throw new RangeError(
      `${label}: out ("${args.out.label}") has ${args.out.size} bytes, needs ${
        (outOffset + segments) * 4
      } for ${segments} sums at offset ${outOffset}`,
    );
  }
  const plan = reducePlan(args.offsets);
  const count = plan.segmentChunks[segments]!;
  // At least one entry: a binding of array<vec2<u32>> must hold one element.
  const chunkTable = gpu.storage(
    `${label} chunks`,
    count > 0 ? plan.chunks : new Uint32Array(2),
  );
  const segmentTable = gpu.storage(`${label} segment chunks`, plan.segmentChunks);
  const partials = gpu.storage(`${label} partials`, Math.max(1, count) * 4);
  const partialParams = gpu.uniform(`${label} partial params`, packUniform([["u32", count]]));
  const segmentParams = gpu.uniform(
    `${label} segment params`,
    packUniform([["u32", segments], ["u32", outOffset]]),
  );
  args.owned?.push(chunkTable, segmentTable, partials, partialParams, segmentParams);
  return await Promise.all([
    kernels.dispatch({
      kernel: REDUCE_KERNEL,
      entry: "partial_sums",
      constants: { SQUARE: args.square ?? false },
      bindings: [args.x, chunkTable, partials, partialParams],
      // No chunks (all segments empty): nothing to do, and encode() skips a 0-workgroup dispatch.
      workgroups: count > 0 ? grid(count, 1) : 0,
      label: `${label}.partial_sums`,
    }),
    kernels.dispatch({
      kernel: REDUCE_KERNEL,
      entry: "segment_sums",
      constants: { ACCUMULATE: args.accumulate ?? false },
      bindings: [partials, segmentTable, args.out, segmentParams],
      workgroups: grid(segments, 1),
      label: `${label}.segment_sums`,
    }),
  ]);
}
