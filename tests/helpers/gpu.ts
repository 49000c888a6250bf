/** One GPU device and kernel cache shared by the tests of a file, and poisoned outputs. */

import { Gpu } from "../../core/device.ts";
import { KernelCache } from "../../core/kernels.ts";

/** The shared device and kernel cache. */
export interface TestGpu {
  gpu: Gpu;
  kernels: KernelCache;
}

let shared: Promise<TestGpu> | undefined;

/** Opens the device once per test process. */
export function testGpu(): Promise<TestGpu> {
  shared ??= Gpu.open().then((gpu) => ({ gpu, kernels: new KernelCache(gpu) }));
  return shared;
}

/** A float32 storage buffer of `count` NaNs, so that an element a kernel skips cannot pass. */
export function poisoned(gpu: Gpu, label: string, count: number): GPUBuffer {
  return gpu.storage(label, new Float32Array(count).fill(Number.NaN));
}

/** A uint32 storage buffer filled with 0xFFFFFFFF, the integer counterpart of {@link poisoned}. */
export function poisonedU32(gpu: Gpu, label: string, count: number): GPUBuffer {
  return gpu.storage(label, new Uint32Array(count).fill(0xFFFFFFFF));
}
