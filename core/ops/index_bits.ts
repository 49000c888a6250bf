/**
 * Typed binding of `wgsl/index_bits.wgsl`: the ±1 binary code of row indices (least significant
 * bit first), the input of an index-MLP hypernetwork.
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
import indexBitsSource from "../../wgsl/index_bits.wgsl" with { type: "text" };

/** `wgsl/index_bits.wgsl`. */
export const INDEX_BITS_KERNEL: KernelSource = wgsl("index_bits", indexBitsSource);

/** out[r, k] = ±1 for bit k of r + first (set: +1), for r < rows and k < bits (at most 32). */
export async function indexBits(
  kernels: KernelCache,
  args: {
    out: BufferRef;
    rows: number;
    bits: number;
    first?: number;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "index_bits";
  const first = args.first ?? 0;
  if (!Number.isInteger(args.rows) || args.rows < 1) {
    throw new RangeError(`${label}: rows must be a positive integer, got ${args.rows}`);
  }
  if (!Number.isInteger(args.bits) || args.bits < 1 || args.bits > 32) {
    throw new RangeError(`${label}: bits must be an integer in [1, 32], got ${args.bits}`);
  }
  if (!Number.isInteger(first) || first < 0 || first + args.rows > 2 ** 32) {
    throw new RangeError(`${label}: rows ${first} … ${first + args.rows - 1} do not fit a u32`);
  }
  const type = args.storage ?? "f32";
  checkBuffers(label, { out: [args.out, args.rows * args.bits, type] });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", args.rows], ["u32", args.bits], ["u32", first]]),
  );
  return await kernels.dispatch({
    kernel: INDEX_BITS_KERNEL,
    storage: { X_T: type },
    bindings: [args.out, params],
    workgroups: grid(args.rows * args.bits, 256),
    label,
  });
}
