/**
 * A dataset on the GPU: uint8 samples packed 4 per u32 or f32 features, and u32 labels, uploaded
 * once — or, for a split over the size limit, streamed in chunks (core/train/streaming.ts) — with
 * a gather dispatch per split that builds a normalised (for training, augmented) batch from an
 * index buffer and a cursor counter, so a step needs no CPU→GPU copy; each epoch uploads only its
 * shuffled index buffer.
 *
 * @module
 */

import type { Storage } from "../gpu/device.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch, KernelCache } from "../gpu/kernels.ts";
import { type GatherAugment, gatherBatch } from "../ops/gather.ts";
import type { DatasetSplit, DatasetSplits } from "./registry.ts";
import type { SplitStream } from "./streaming.ts";

/**
 * A split as the GPU sees it: position i of the split is row `rows[i]` of the dataset's arrays
 * (the identity without `rows`), so a validation split needs no copy of the dataset.
 */
export interface HostSplit {
  samples: Uint8Array | Float32Array;
  labels: ArrayLike<number>;
  features: number;
  rows?: Uint32Array;
  count: number;
}

/** A split on the GPU. */
export interface GpuSplit {
  /** The whole split (resident), or chunk slot 0 (streamed). */
  samples: GPUBuffer;
  /** Chunk slot 1 when streamed; the same buffer as `samples` when resident. */
  samplesB: GPUBuffer;
  /** One u32 label per split position, always resident. */
  labels: GPUBuffer;
  /** f32 samples (else bytes packed 4 per u32). */
  float: boolean;
  /** Rows of the split this view covers: `first .. first + count`. */
  first: number;
  count: number;
  /** When streamed: the host rows and the chunk slots they pass through. */
  stream?: SplitStream;
}

/** Bytes per value of a split's samples on the GPU. */
export function valueBytes(samples: Uint8Array | Float32Array): number {
  return samples instanceof Float32Array ? 4 : 1;
}

/**
 * Positions `from .. from + n` of a split, in the order `order` gives them (split positions; the
 * identity without it), as the bytes of a GPU buffer: rows packed back to back (uint8 4 per u32,
 * little-endian, zero-padded to a word) or f32.
 */
export function packRows(
  host: HostSplit,
  from: number,
  n: number,
  order?: ArrayLike<number>,
): Uint8Array<ArrayBuffer> {
  const d = host.features;
  const width = valueBytes(host.samples);
  const source = new Uint8Array(
    host.samples.buffer,
    host.samples.byteOffset,
    host.samples.byteLength,
  );
  const rowBytes = d * width;
  const out = new Uint8Array(Math.max(4, Math.ceil((n * rowBytes) / 4) * 4));
  for (let i = 0; i < n; i++) {
    const position = order ? order[from + i]! : from + i;
    const row = host.rows ? host.rows[position]! : position;
    out.set(source.subarray(row * rowBytes, (row + 1) * rowBytes), i * rowBytes);
  }
  return out;
}

/** The labels of a split's positions as u32. */
export function splitLabels(host: HostSplit): Uint32Array {
  return Uint32Array.from(
    { length: host.count },
    (_, i) => host.labels[host.rows ? host.rows[i]! : i]!,
  );
}

/** The host view of a dataset's split: its first `count` rows, or the rows `rows` names. */
export function hostSplit(
  split: DatasetSplit,
  features: number,
  count = split.count,
  rows?: Uint32Array,
): HostSplit {
  return {
    samples: split.samples,
    labels: split.labels,
    features,
    rows,
    count: rows?.length ?? count,
  };
}

/** Uploads a split whole. */
export function uploadSplit(gpu: Gpu, name: string, host: HostSplit): GpuSplit {
  const float = host.samples instanceof Float32Array;
  const type = float ? "f32" : "u8";
  // Contiguous rows go up as they are; a reordered split (validation held out) is packed once.
  const direct = !host.rows && host.samples.length >= host.count * host.features;
  const bytes = direct
    ? host.samples.subarray(0, host.count * host.features)
    : packRows(host, 0, host.count);
  const samples = gpu.storage(`${name} samples (${type})`, bytes);
  return {
    samples,
    samplesB: samples,
    labels: gpu.storage(`${name} labels (u32)`, splitLabels(host)),
    float,
    first: 0,
    count: host.count,
  };
}

/** The identity index buffer `first .. first + count` (evaluation visits rows in order). */
export function rangeIndices(gpu: Gpu, label: string, first: number, count: number): GPUBuffer {
  return gpu.storage(label, Uint32Array.from({ length: count }, (_, i) => first + i));
}

/** A Fisher–Yates permutation of `0..n-1` from a seeded generator. */
export function permutation(n: number, random: () => number): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** The shuffled row order of an epoch: a pure function of (seed, epoch), so a resume repeats it. */
export function epochPermutation(
  count: number,
  seed: number,
  epoch: number,
  random: (seed: number) => () => number,
): Uint32Array {
  return permutation(count, random(seed * 1000003 + epoch + 1));
}

/**
 * The dataset's normalisation as the kernels take it: one mean and std for all values, one per
 * channel, or one per feature, as the dataset gave them (else the first for all).
 */
export function normalisationOf(
  data: Pick<DatasetSplits, "info" | "mean" | "std">,
): { mean: number[]; std: number[] } {
  const { features } = data.info;
  const channels = data.info.image?.channels ?? 1;
  const stats = (values: number[], fill: number) =>
    values.length === 1 || values.length === features ||
      (values.length === channels && features % channels === 0)
      ? values
      : [values[0] ?? fill];
  return { mean: stats(data.mean, 0), std: stats(data.std, 1) };
}

/** The gather dispatch of a split: batch `cursor[cursorIndex]` of `indices`. */
export function gatherFor(
  kernels: KernelCache,
  split: GpuSplit,
  data: Pick<DatasetSplits, "info" | "mean" | "std">,
  args: {
    indices: GPUBuffer;
    indexCount: number;
    cursor: GPUBuffer;
    cursorIndex: number;
    x: GPUBuffer;
    y: GPUBuffer;
    batch: number;
    /** Rows per streamed chunk (0 or absent when the split is resident). */
    chunkRows?: number;
    /** Training-time augmentation; absent for evaluation. */
    augment?: GatherAugment;
    /** x's storage type (the plan's precision); default f32. */
    storage?: Storage;
    /**
     * The values as read, not normalised: bytes as 0..255, f32 features as they are (x must be
     * f32); what the evaluation's attacks and test-time views start from.
     */
    raw?: boolean;
    label: string;
  },
): Promise<Dispatch> {
  const { features } = data.info;
  const { mean, std } = args.raw
    ? { mean: [0], std: [split.float ? 1 : 1 / 255] }
    : normalisationOf(data);
  return gatherBatch(kernels, {
    data: split.samples,
    dataB: split.samplesB,
    float: split.float,
    labels: split.labels,
    indices: args.indices,
    indexCount: args.indexCount,
    cursor: args.cursor,
    cursorIndex: args.cursorIndex,
    cursorStride: args.batch,
    chunkRows: args.chunkRows ?? 0,
    x: args.x,
    y: args.y,
    batch: args.batch,
    features,
    mean,
    std,
    augment: args.augment,
    storage: args.storage,
    label: args.label,
  });
}
