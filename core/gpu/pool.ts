/**
 * Activation and gradient buffers reused by liveness: the plan releases a buffer once the last
 * dispatch that reads it has been recorded, and a later tensor of the same byte size takes it.
 * Dispatches run in recorded order, so reuse never races. Everything is freed by one dispose().
 *
 * @module
 */

import { type Gpu, type Storage, storageBytes } from "./device.ts";

/** Buffers grouped by byte size; acquire takes a free one or makes one. */
export class BufferPool {
  readonly gpu: Gpu;
  #free = new Map<number, GPUBuffer[]>();
  #all: GPUBuffer[] = [];
  #bytes = 0;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
  }

  /** A buffer of `count` values of `type` (default f32), reused when one of that size is free. */
  acquire(count: number, label: string, type: Storage = "f32"): GPUBuffer {
    const bytes = Math.max(16, Math.ceil((count * storageBytes(type)) / 16) * 16);
    const reuse = this.#free.get(bytes)?.pop();
    if (reuse) return reuse;
    const buffer = this.gpu.storage(label, bytes);
    this.#all.push(buffer);
    this.#bytes += bytes;
    return buffer;
  }

  /** Returns a buffer for reuse by later acquisitions. */
  release(buffer: GPUBuffer): void {
    const list = this.#free.get(buffer.size) ?? [];
    if (!list.includes(buffer)) list.push(buffer);
    this.#free.set(buffer.size, list);
  }

  /** Every buffer made so far. */
  buffers(): readonly GPUBuffer[] {
    return this.#all;
  }

  /** Bytes allocated in all. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Destroys every buffer made. */
  dispose(): void {
    for (const b of this.#all) b.destroy();
    this.#all = [];
    this.#free.clear();
  }
}
