/**
 * Metrics reach the CPU without stalling the GPU: the loss and correct counts are summed on the
 * GPU into an accumulator; every N steps a copy of it goes into one of a ring of staging buffers
 * in the same submission, and the accumulator is cleared. The staging buffer is mapped without
 * waiting; the loop waits only when the whole ring is still in flight (which also bounds how far
 * the CPU runs ahead of the GPU).
 *
 * @module
 */

import type { Gpu } from "./device.ts";

/** Where a window of training metrics ends. */
export interface WindowMeta {
  /** The optimizer step at the end of the window. */
  step: number;
  /** The epoch (0-based) the window ends in. */
  epoch: number;
  /** Samples in the window. */
  samples: number;
}

/** One window of training metrics, as read back. */
export interface MetricWindow extends WindowMeta {
  /** Mean loss (every term with its weight) and accuracy over the window's samples. */
  loss: number;
  /** Fraction of the window's samples classified correctly. */
  accuracy: number;
  /** Each loss term's mean, by name (when the loss has more than one term). */
  terms?: Record<string, number>;
}

interface Slot {
  buffer: GPUBuffer;
  pending?: Promise<void>;
}

/** A ring of staging buffers for metric readback. */
export class MetricRing {
  readonly #gpu: Gpu;
  readonly #slots: Slot[];
  #next = 0;
  readonly #onWindow: (meta: WindowMeta, sums: Float32Array) => void;

  /** `size` staging buffers of `bytes`; each readback calls `onWindow` with the sums read. */
  constructor(
    gpu: Gpu,
    size: number,
    bytes: number,
    onWindow: (meta: WindowMeta, sums: Float32Array) => void,
  ) {
    this.#gpu = gpu;
    this.#onWindow = onWindow;
    this.#slots = Array.from({ length: size }, (_, i) => ({
      buffer: gpu.createBuffer(
        `metrics staging ${i}`,
        bytes,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      ),
    }));
  }

  /**
   * The staging buffer the next readback copies into; waits only if that slot's previous
   * readback has not finished.
   */
  async acquire(): Promise<GPUBuffer> {
    const slot = this.#slots[this.#next]!;
    if (slot.pending) await slot.pending;
    return slot.buffer;
  }

  /** After the submission that copies into the acquired buffer: map it without waiting. */
  commit(meta: WindowMeta): void {
    const slot = this.#slots[this.#next]!;
    this.#next = (this.#next + 1) % this.#slots.length;
    slot.pending = slot.buffer.mapAsync(GPUMapMode.READ).then(() => {
      const sums = new Float32Array(slot.buffer.getMappedRange().slice(0));
      slot.buffer.unmap();
      slot.pending = undefined;
      this.#gpu.check();
      this.#onWindow(meta, sums);
    });
  }

  /** Waits for every readback in flight. */
  async drain(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.pending));
  }

  /** Frees the staging buffers. */
  dispose(): void {
    for (const s of this.#slots) s.buffer.destroy();
  }
}
