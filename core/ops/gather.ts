/**
 * Typed binding of `wgsl/gather.wgsl`: the batch gather from a GPU-resident uint8 dataset, and
 * {@link packBytes}, which packs bytes into the u32 words the kernel reads.
 *
 * The batch's first position in the epoch's index buffer is read on the GPU,
 * `start = cursor[cursorIndex] · cursorStride`, so one Dispatch serves every step: either the
 * cursor holds the row offset (cursorStride 1, the trainer adds `batch` each step) or the
 * step-in-epoch counter (cursorStride = batch, the trainer adds 1: `EPOCH_MICRO_STEP` of
 * core/counters.ts, reset to 0 with each epoch's index upload). Positions ≥ `indexCount`
 * give masked rows (x = 0, label 0).
 *
 * @module
 */

import {
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import src from "../../wgsl/gather.wgsl" with { type: "text" };

/** `wgsl/gather.wgsl`. */
export const GATHER_KERNEL: KernelSource = wgsl("gather", src);

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Packs bytes 4 per u32, little-endian: byte j lands in word j / 4 at bits 8·(j % 4); the last
 * word is zero-padded.
 */
export function packBytes(u8: Uint8Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(u8.length / 4));
  if (LITTLE_ENDIAN) {
    new Uint8Array(words.buffer).set(u8);
    return words;
  }
  for (let j = 0; j < u8.length; j++) words[j >> 2]! |= u8[j]! << (8 * (j & 3));
  return words;
}

/** Arguments of {@link gatherBatch}. */
export interface GatherArgs {
  /** The dataset's bytes packed by {@link packBytes}: rows of `rowBytes` bytes. */
  data: GPUBuffer;
  /** The u8 labels packed by {@link packBytes}, one per dataset row. */
  labels: GPUBuffer;
  /** The epoch's row ids, `array<u32>`. */
  indices: GPUBuffer;
  /** How many entries of `indices` are valid (the epoch's length); default all of the buffer. */
  indexCount?: number;
  /** The cursor buffer, `array<u32>`, read on the GPU every step. */
  cursor: GPUBuffer;
  /** Which word of `cursor` to read; default 0. */
  cursorIndex?: number;
  /** start = cursor[cursorIndex]·cursorStride; default 1 (the cursor is the row offset). */
  cursorStride?: number;
  /** Output batch, `batch·rowBytes` f32 values. */
  x: GPUBuffer;
  /** Output labels, `batch` u32 values. */
  y: GPUBuffer;
  batch: number;
  /** D, the bytes per row; any value (rows may straddle words). */
  rowBytes: number;
  /** Channels of the channel-first row (1 to 4); `rowBytes` must be a multiple. */
  channels: number;
  /** Per-channel mean of byte/255. */
  mean: readonly number[];
  /** Per-channel standard deviation of byte/255 (> 0). */
  std: readonly number[];
  /** x's storage type; default f32 (values are computed in f32 and rounded once). */
  storage?: Storage;
  label?: string;
}

function positiveInteger(value: number, name: string, label: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 0xFFFFFFFF) {
    throw new RangeError(`${label}: ${name} must be a positive integer, got ${value}`);
  }
}

/**
 * x[r, j] = (byte j of row indices[start + r] / 255 − mean_c)/std_c with c = j / (D/channels),
 * y[r] = that row's label; rows with start + r ≥ indexCount get x = 0 and label 0.
 */
export async function gatherBatch(kernels: KernelCache, args: GatherArgs): Promise<Dispatch> {
  const label = args.label ?? "gather_batch";
  positiveInteger(args.batch, "batch", label);
  positiveInteger(args.rowBytes, "rowBytes", label);
  positiveInteger(args.cursorStride ?? 1, "cursorStride", label);
  const { channels, rowBytes, batch } = args;
  if (!Number.isInteger(channels) || channels < 1 || channels > 4 || rowBytes % channels !== 0) {
    throw new RangeError(
      `${label}: channels must be 1 to 4 and divide rowBytes ${rowBytes}, got ${channels}`,
    );
  }
  if (args.mean.length !== channels || args.std.length !== channels) {
    throw new RangeError(
      `${label}: mean and std need ${channels} values each, got ${args.mean.length} and ${args.std.length}`,
    );
  }
  if (!args.std.every((s) => s > 0 && Number.isFinite(s))) {
    throw new RangeError(`${label}: std must be finite and > 0, got [${args.std.join(", ")}]`);
  }
  const indexCount = args.indexCount ?? args.indices.size / 4;
  if (!Number.isInteger(indexCount) || indexCount < 0 || indexCount > args.indices.size / 4) {
    throw new RangeError(
      `${label}: indexCount ${indexCount} exceeds the ${
        args.indices.size / 4
      } entries of "${args.indices.label}"`,
    );
  }
  const cursorIndex = args.cursorIndex ?? 0;
  if (!Number.isInteger(cursorIndex) || cursorIndex < 0 || cursorIndex >= args.cursor.size / 4) {
    throw new RangeError(
      `${label}: cursorIndex ${cursorIndex} is outside the ${
        args.cursor.size / 4
      } words of "${args.cursor.label}"`,
    );
  }
  const xType = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, batch * rowBytes, xType], y: [args.y, batch] });
  // (byte/255 − mean)/std = byte·scale + shift, folded in float64 so the kernel rounds once per op.
  const scale = [0, 1, 2, 3].map((c) => c < channels ? 1 / (255 * args.std[c]!) : 0);
  const shift = [0, 1, 2, 3].map((c) => c < channels ? -args.mean[c]! / args.std[c]! : 0);
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", batch],
      ["u32", rowBytes],
      ["u32", rowBytes / channels],
      ["u32", cursorIndex],
      ["u32", args.cursorStride ?? 1],
      ["u32", indexCount],
      ["u32", 0],
      ["u32", 0],
      ...scale.map((v) => ["f32", v] as const),
      ...shift.map((v) => ["f32", v] as const),
    ]),
  );
  return await kernels.dispatch({
    kernel: GATHER_KERNEL,
    entry: "gather_batch",
    storage: { X_T: xType },
    bindings: [args.data, args.labels, args.indices, args.cursor, args.x, args.y, params],
    workgroups: grid(batch * rowBytes, 256),
    label,
  });
}
