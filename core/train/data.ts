/**
 * A dataset on the GPU: uploaded once as uint8 (packed 4 per u32), with a gather dispatch per
 * split that builds a normalised batch from an index buffer and a cursor counter, so a step needs
 * no CPU→GPU copy; each epoch uploads only its shuffled index buffer.
 *
 * @module
 */

import type { Storage } from "../gpu/device.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch, KernelCache } from "../gpu/kernels.ts";
import { gatherBatch, packBytes } from "../ops/gather.ts";
import type { DatasetSplits } from "./registry.ts";

/** A split resident on the GPU. */
export interface GpuSplit {
  samples: GPUBuffer;
  labels: GPUBuffer;
  /** Rows of the split this view covers: `first .. first + count`. */
  first: number;
  count: number;
}

/** Uploads rows `first .. first + count` of a split's samples and labels. */
export function uploadSplit(
  gpu: Gpu,
  name: string,
  samples: Uint8Array,
  labels: Uint8Array,
  features: number,
  count: number,
): GpuSplit {
  return {
    samples: gpu.storage(`${name} samples (u8)`, packBytes(samples.subarray(0, count * features))),
    labels: gpu.storage(`${name} labels (u8)`, packBytes(labels.subarray(0, count))),
    first: 0,
    count,
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

/** The gather dispatch of a split: batch `cursor[cursorIndex]` of `indices`. */
export function gatherFor(
  kernels: KernelCache,
  split: GpuSplit,
  data: DatasetSplits,
  args: {
    indices: GPUBuffer;
    indexCount: number;
    cursor: GPUBuffer;
    cursorIndex: number;
    x: GPUBuffer;
    y: GPUBuffer;
    batch: number;
    /** x's storage type (the plan's precision); default f32. */
    storage?: Storage;
    label: string;
  },
): Promise<Dispatch> {
  const channels = data.info.image?.channels ?? 1;
  return gatherBatch(kernels, {
    data: split.samples,
    labels: split.labels,
    indices: args.indices,
    indexCount: args.indexCount,
    cursor: args.cursor,
    cursorIndex: args.cursorIndex,
    cursorStride: args.batch,
    x: args.x,
    y: args.y,
    batch: args.batch,
    rowBytes: data.info.features,
    channels,
    mean: data.mean.length === channels ? data.mean : Array(channels).fill(data.mean[0] ?? 0),
    std: data.std.length === channels ? data.std : Array(channels).fill(data.std[0] ?? 1),
    storage: args.storage,
    label: args.label,
  });
}
