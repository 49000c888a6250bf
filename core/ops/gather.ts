/**
 * Typed binding of `wgsl/gather.wgsl`: the batch gather from a GPU-resident (or streamed) uint8
 * or f32 dataset, normalised per channel or per feature and, for training, augmented (random
 * crop with padding, horizontal flip, random resized crop) with Philox keyed by the step; and
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

/** The Philox stream of the gather's augmentation (other random ops use other streams). */
export const AUGMENT_STREAM = 0x61756701;

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

/**
 * Image augmentation inside the gather, for training batches (never evaluation): every field
 * off by default. Images are `channels × height × width`, channel-major.
 */
export interface GatherAugment {
  channels: number;
  height: number;
  width: number;
  /** Random crop with this much zero padding on each side (torchvision RandomCrop); 0 = off. */
  padding: number;
  /** Probability of a horizontal flip; 0 = off. */
  flip: number;
  /**
   * Random resized crop (torchvision RandomResizedCrop): the box's area fraction range and
   * aspect-ratio range; absent = off.
   */
  resized?: { scale: readonly [number, number]; ratio: readonly [number, number] };
  /** The run's seed; the draws are keyed by (seed, {@link AUGMENT_STREAM}). */
  seed: number;
  /** Which word of the cursor buffer holds the step the draws are keyed by. */
  counterIndex: number;
}

/** Arguments of {@link gatherBatch}. */
export interface GatherArgs {
  /** The dataset (or streamed chunk slot 0): rows of `features` values. */
  data: GPUBuffer;
  /** Streamed chunk slot 1; default `data`. */
  dataB?: GPUBuffer;
  /** f32 values instead of bytes packed by {@link packBytes}; default false. */
  float?: boolean;
  /** One u32 label per split position. */
  labels: GPUBuffer;
  /** The epoch's split positions, `array<u32>` (the label of q is labels[indices[q]]). */
  indices: GPUBuffer;
  /** How many entries of `indices` are valid (the epoch's length); default all of the buffer. */
  indexCount?: number;
  /** The cursor buffer, `array<u32>`, read on the GPU every step. */
  cursor: GPUBuffer;
  /** Which word of `cursor` to read; default 0. */
  cursorIndex?: number;
  /** start = cursor[cursorIndex]·cursorStride; default 1 (the cursor is the row offset). */
  cursorStride?: number;
  /**
   * Streaming: position q reads row q mod chunkRows of slot (q / chunkRows) mod 2 instead of row
   * indices[q] of `data`; default 0 (resident).
   */
  chunkRows?: number;
  /** Output batch, `batch·features` values. */
  x: GPUBuffer;
  /** Output labels, `batch` u32 values. */
  y: GPUBuffer;
  batch: number;
  /** D, values per row (rows of bytes may straddle words). */
  features: number;
  /**
   * Mean and standard deviation of byte/255 (or of the f32 value), one for all values, one per
   * channel or one per feature: any count S that divides D, value j using entry j / (D/S).
   */
  mean: readonly number[];
  std: readonly number[];
  /** Training-time augmentation; absent = off. */
  augment?: GatherAugment;
  /** x's storage type; default f32 (values are computed in f32 and rounded once). */
  storage?: Storage;
  label?: string;
}

function positiveInteger(value: number, name: string, label: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 0xFFFFFFFF) {
    throw new RangeError(`${label}: ${name} must be a positive integer, got ${value}`);
  }
}

/** The augmentation's uniform fields, checked; zeros when off. */
function augmentFields(a: GatherAugment | undefined, features: number, label: string) {
  if (!a) return { channels: 0, height: 0, width: 0, pad: 0, flip: 0, resized: undefined };
  const { channels, height, width } = a;
  if (
    ![channels, height, width].every((v) => Number.isInteger(v) && v >= 1) ||
    channels * height * width !== features
  ) {
    throw new RangeError(
      `${label}: augmentation needs an image of channels × height × width = ${features} values, got ${channels}×${height}×${width}`,
    );
  }
  if (!Number.isInteger(a.padding) || a.padding < 0 || a.padding > 0xFFFF) {
    throw new RangeError(`${label}: crop padding must be an integer ≥ 0, got ${a.padding}`);
  }
  if (!(a.flip >= 0 && a.flip <= 1)) {
    throw new RangeError(`${label}: flip probability must be in [0, 1], got ${a.flip}`);
  }
  const r = a.resized;
  if (r) {
    const [s0, s1] = r.scale;
    const [r0, r1] = r.ratio;
    if (!(s0 > 0 && s0 <= s1 && s1 <= 1) || !(r0 > 0 && r0 <= r1 && Number.isFinite(r1))) {
      throw new RangeError(
        `${label}: resized crop needs 0 < scale ${s0} ≤ ${s1} ≤ 1 and 0 < ratio ${r0} ≤ ${r1}`,
      );
    }
  }
  return { channels, height, width, pad: a.padding, flip: a.flip, resized: r };
}

/**
 * The normalisation of raw values (a byte as 0..255, or an f32 feature) as the kernels apply it,
 * x = v·scale[s] + shift[s]: `[scale_0 … scale_{S−1}, shift_0 … shift_{S−1}]` with
 * (v·k − mean)/std = v·scale + shift, k = 1/255 for bytes (1 for f32), folded in float64 so a
 * kernel rounds once per operation. The gather and the evaluation kernels (adversarial examples,
 * test-time views) share it, so the same raw value gives the same input bit for bit.
 */
export function normalisationStats(
  mean: readonly number[],
  std: readonly number[],
  float: boolean,
): Float32Array {
  const unit = float ? 1 : 1 / 255;
  const count = mean.length;
  const stats = new Float32Array(2 * count);
  for (let s = 0; s < count; s++) {
    stats[s] = unit / std[s]!;
    stats[count + s] = -mean[s]! / std[s]!;
  }
  return stats;
}

/**
 * x[r, j] = (value j of the row at position start + r − mean_s)/std_s (value = byte/255 or the
 * f32), augmented when `augment` is given; y[r] = that position's label; positions ≥ indexCount
 * give x = 0 and label 0.
 */
export async function gatherBatch(kernels: KernelCache, args: GatherArgs): Promise<Dispatch> {
  const label = args.label ?? "gather_batch";
  positiveInteger(args.batch, "batch", label);
  positiveInteger(args.features, "features", label);
  positiveInteger(args.cursorStride ?? 1, "cursorStride", label);
  const { features, batch } = args;
  const statCount = args.mean.length;
  if (statCount < 1 || args.std.length !== statCount || features % statCount !== 0) {
    throw new RangeError(
      `${label}: mean and std need the same count of values (1, one per channel or one per feature) dividing ${features}, got ${args.mean.length} and ${args.std.length}`,
    );
  }
  const badStd = args.std.findIndex((s) => !(s > 0 && Number.isFinite(s)));
  if (badStd >= 0) {
    throw new RangeError(
      `${label}: std must be finite and > 0, got std[${badStd}] = ${args.std[badStd]}`,
    );
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
  const words = args.cursor.size / 4;
  const counterIndex = args.augment?.counterIndex ?? 0;
  for (const [name, index] of [["cursorIndex", cursorIndex], ["counterIndex", counterIndex]]) {
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= words) {
      throw new RangeError(
        `${label}: ${name} ${index} is outside the ${words} words of "${args.cursor.label}"`,
      );
    }
  }
  const chunkRows = args.chunkRows ?? 0;
  if (!Number.isInteger(chunkRows) || chunkRows < 0) {
    throw new RangeError(`${label}: chunkRows must be an integer ≥ 0, got ${chunkRows}`);
  }
  const aug = augmentFields(args.augment, features, label);
  const xType = args.storage ?? "f32";
  checkBuffers(label, { x: [args.x, batch * features, xType], y: [args.y, batch] });
  const stats = normalisationStats(args.mean, args.std, args.float ?? false);
  const gpu = kernels.gpu;
  const [scaleLo, scaleHi] = aug.resized?.scale ?? [1, 1];
  const [ratioLo, ratioHi] = aug.resized?.ratio ?? [1, 1];
  const params = gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", batch],
      ["u32", features],
      ["u32", features / statCount],
      ["u32", statCount],
      ["u32", cursorIndex],
      ["u32", args.cursorStride ?? 1],
      ["u32", indexCount],
      ["u32", chunkRows],
      ["u32", aug.channels],
      ["u32", aug.height],
      ["u32", aug.width],
      ["u32", aug.pad],
      ["u32", args.augment?.seed ?? 0],
      ["u32", AUGMENT_STREAM],
      ["u32", counterIndex],
      ["u32", aug.resized ? 1 : 0],
      ["f32", aug.flip],
      ["f32", scaleLo],
      ["f32", scaleHi],
      ["f32", ratioLo],
      ["f32", ratioHi],
      ["f32", Math.log(ratioLo)],
      ["f32", Math.log(ratioHi)],
      ["u32", 0],
    ]),
  );
  return await kernels.dispatch({
    kernel: GATHER_KERNEL,
    entry: "gather_batch",
    constants: { FLOAT_DATA: args.float ?? false, AUGMENT: args.augment !== undefined },
    storage: { X_T: xType },
    bindings: [
      args.data,
      args.dataB ?? args.data,
      args.labels,
      args.indices,
      args.cursor,
      gpu.storage(`${label} normalisation`, stats),
      args.x,
      args.y,
      params,
    ],
    workgroups: grid(batch, 1),
    label,
  });
}
