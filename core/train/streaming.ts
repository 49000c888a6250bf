/**
 * Data larger than the GPU holds: a split over the size limit streams through two chunk slots
 * (double buffering). The CPU packs chunk k of the epoch's shuffled rows — in epoch order — and
 * writes it into slot k mod 2 while the GPU trains on the other slot; the gather reads position q
 * from row q mod R of slot (q / R) mod 2 (`wgsl/gather.wgsl`). Queue writes are ordered with
 * submissions, so a slot is rewritten only after every step that reads it was submitted. The
 * epoch's order is the same permutation a resident split uses, so an epoch still visits every
 * sample exactly once, shuffled, and with chunks of whole steps a streamed run trains on exactly
 * the batches a resident one does.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { type GpuSplit, type HostSplit, packRows, splitLabels, valueBytes } from "./data.ts";

/** Bytes of one chunk slot for a run, and whether a split of `bytes` streams. */
export interface ChunkPolicy {
  /** Bytes of one chunk slot. */
  chunkBytes: number;
  /** Splits whose samples take more bytes than this stream. */
  limit: number;
  /** Where the numbers came from, for messages. */
  source: string;
}

/**
 * `data_chunk_mb` > 0: splits over that size stream in chunks of it. 0: splits over what one
 * storage binding may hold (the adapter's maxStorageBufferBindingSize and maxBufferSize) stream
 * in chunks of half that, so the two slots take no more than one resident split could.
 */
export function chunkPolicy(gpu: Gpu, chunkMb: number): ChunkPolicy {
  if (chunkMb > 0) {
    const bytes = Math.floor(chunkMb * 2 ** 20);
    return { chunkBytes: bytes, limit: bytes, source: `data_chunk_mb ${chunkMb}` };
  }
  const limits = gpu.report.limits;
  const limit = Math.min(
    limits.maxStorageBufferBindingSize ?? 2 ** 27,
    limits.maxBufferSize ?? 2 ** 28,
  );
  return {
    chunkBytes: Math.floor(limit / 2 / 4) * 4,
    limit,
    source: `the adapter's maxStorageBufferBindingSize/maxBufferSize (${limit} bytes)`,
  };
}

/** The two chunk slots of a run, shared by every streamed split; remembers what each holds. */
export class ChunkSlots {
  readonly buffers: [GPUBuffer, GPUBuffer];
  readonly bytes: number;
  readonly #gpu: Gpu;
  readonly #holds: [string | undefined, string | undefined] = [undefined, undefined];
  /** Chunks written so far (for tests and the log). */
  writes = 0;

  constructor(gpu: Gpu, bytes: number) {
    this.#gpu = gpu;
    this.bytes = Math.ceil(bytes / 4) * 4;
    this.buffers = [
      gpu.storage("data chunk slot 0", this.bytes),
      gpu.storage("data chunk slot 1", this.bytes),
    ];
  }

  /**
   * Makes slot `slot` hold the chunk named `key`, packing and writing it unless it already does.
   * The write is queued after everything submitted so far.
   */
  fill(slot: 0 | 1, key: string, pack: () => Uint8Array<ArrayBuffer>): void {
    if (this.#holds[slot] === key) return;
    const bytes = pack();
    if (bytes.byteLength > this.bytes) {
      throw new RangeError(`chunk "${key}" has ${bytes.byteLength} bytes, the slots ${this.bytes}`);
    }
    this.#gpu.write(this.buffers[slot], bytes);
    this.#holds[slot] = key;
    this.writes++;
  }
}

/** A split that streams: its host rows and the slots they pass through. */
export class SplitStream {
  readonly name: string;
  readonly host: HostSplit;
  readonly slots: ChunkSlots;

  constructor(name: string, host: HostSplit, slots: ChunkSlots) {
    this.name = name;
    this.host = host;
    this.slots = slots;
  }

  /** Bytes of one row on the GPU. */
  get rowBytes(): number {
    return this.host.features * valueBytes(this.host.samples);
  }

  /**
   * Rows per chunk for a reader that takes `unit` rows at a time (a step's batch × grad_accum, or
   * an evaluation batch): as many whole units as a slot holds. Fails naming `data_chunk_mb` when
   * a slot holds less than one unit.
   */
  chunkRows(unit: number, source: string): number {
    const units = Math.floor(this.slots.bytes / (this.rowBytes * unit));
    if (units < 1) {
      throw new RangeError(
        `${source}: a chunk of ${this.slots.bytes} bytes holds ${
          Math.floor(this.slots.bytes / this.rowBytes)
        } ${this.name} rows of ${this.rowBytes} bytes, fewer than the ${unit} one step reads; raise data_chunk_mb`,
      );
    }
    return units * unit;
  }

  /**
   * Chunk k (rows of `chunkRows`) of positions `first + order[...]` (or `first ..` in order) into
   * slot k mod 2, named `key` so an unchanged chunk is not written twice.
   */
  fill(key: string, k: number, chunkRows: number, total: number, order?: Uint32Array, first = 0) {
    const from = k * chunkRows;
    const n = Math.min(chunkRows, total - from);
    this.slots.fill(
      (k % 2) as 0 | 1,
      `${this.name} ${key} chunk ${k}`,
      () => packRows(this.host, first + from, n, order && order.subarray(0, total)),
    );
  }
}

/** A split on the GPU through the slots: resident labels, samples streamed. */
export function streamSplit(gpu: Gpu, name: string, host: HostSplit, slots: ChunkSlots): GpuSplit {
  return {
    samples: slots.buffers[0],
    samplesB: slots.buffers[1],
    labels: gpu.storage(`${name} labels (u32)`, splitLabels(host)),
    float: host.samples instanceof Float32Array,
    first: 0,
    count: host.count,
    stream: new SplitStream(name, host, slots),
  };
}

/**
 * The training split's feed within an epoch: which chunk each step reads, the write of that
 * chunk before its first step is submitted, and the write of the next one right after, so the
 * CPU packs chunk k + 1 while the GPU trains on chunk k.
 */
export class EpochFeed {
  readonly stream: SplitStream;
  /** Rows per chunk: whole steps. */
  readonly chunkRows: number;
  readonly stepsPerChunk: number;
  readonly count: number;
  #epoch = -1;
  #order?: Uint32Array;

  constructor(stream: SplitStream, stepRows: number, count: number, source: string) {
    this.stream = stream;
    this.chunkRows = stream.chunkRows(stepRows, source);
    this.stepsPerChunk = this.chunkRows / stepRows;
    this.count = count;
  }

  /** The epoch's order of split positions (its permutation). */
  beginEpoch(epoch: number, order: Uint32Array): void {
    this.#epoch = epoch;
    this.#order = order;
  }

  /** Steps from step-in-epoch `s` to the end of its chunk: a submission stays within one chunk. */
  stepsLeftInChunk(s: number): number {
    return this.stepsPerChunk - (s % this.stepsPerChunk);
  }

  #fill(k: number): void {
    if (k * this.chunkRows >= this.count) return;
    this.stream.fill(`epoch ${this.#epoch}`, k, this.chunkRows, this.count, this.#order);
  }

  /** Before submitting steps from `s`: their chunk is in its slot. */
  prepare(s: number): void {
    this.#fill(Math.floor(s / this.stepsPerChunk));
  }

  /** After submitting steps up to `s` (exclusive): the next chunk goes into the other slot. */
  prefetch(s: number): void {
    this.#fill(Math.floor((s - 1) / this.stepsPerChunk) + 1);
  }
}
