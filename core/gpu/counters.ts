/**
 * The GPU-side step counters (`wgsl/counters.wgsl`): kernels read the step from here, so steps
 * need no CPU writes between them and several can be encoded per submission.
 *
 * @module
 */

import type { Gpu } from "./device.ts";
import { type Dispatch, type KernelCache, type KernelSource, wgsl } from "./kernels.ts";
import countersSource from "../../wgsl/counters.wgsl" with { type: "text" };

/** `wgsl/counters.wgsl`. */
export const COUNTERS_KERNEL: KernelSource = wgsl("counters", countersSource);

/** Optimizer steps taken (the lr table index; t − 1 for bias correction). */
export const OPTIMIZER_STEP = 0;
/** Micro-batches taken in the current epoch (the data cursor). */
export const EPOCH_MICRO_STEP = 1;
/** Micro-batches taken in all (the key of dropout and other per-step randomness). */
export const GLOBAL_MICRO_STEP = 2;
/** Number of counters. */
export const COUNTER_COUNT = 8;

/** A zeroed counters buffer. */
export function createCounters(gpu: Gpu, label = "step counters"): GPUBuffer {
  return gpu.storage(label, new Uint32Array(COUNTER_COUNT));
}

/** A dispatch adding `increments[i]` to counter i. */
export function advanceCounters(
  kernels: KernelCache,
  counters: GPUBuffer,
  increments: Partial<Record<number, number>>,
  label = "advance counters",
): Promise<Dispatch> {
  const values = new Uint32Array(COUNTER_COUNT);
  for (const [index, inc] of Object.entries(increments)) {
    const i = Number(index);
    if (!Number.isInteger(i) || i < 0 || i >= COUNTER_COUNT) {
      throw new RangeError(`${label}: counter index ${index} is outside 0..${COUNTER_COUNT - 1}`);
    }
    values[i] = inc ?? 0;
  }
  const params = kernels.gpu.uniform(`${label} params`, values);
  return kernels.dispatch({
    kernel: COUNTERS_KERNEL,
    entry: "advance",
    bindings: [counters, params],
    workgroups: 1,
    label,
  });
}
