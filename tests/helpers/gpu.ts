/** One GPU device and kernel cache shared by the tests of a file, and poisoned outputs. */

import { Gpu, type Storage, storageArray } from "../../core/gpu/device.ts";
import { KernelCache } from "../../core/gpu/kernels.ts";

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

/**
 * A storage buffer of `count` NaNs (float32, or f16 with `type`), so that an element a kernel skips
 * cannot pass.
 */
export function poisoned(gpu: Gpu, label: string, count: number, type: Storage = "f32"): GPUBuffer {
  return gpu.storage(label, storageArray(new Float32Array(count).fill(Number.NaN), type));
}

/** `values` as a buffer of `type` holds them (f16: rounded to nearest even), widened to f32. */
export function storedAs(values: ArrayLike<number>, type: Storage = "f32"): Float32Array {
  return Float32Array.from(storageArray(values, type));
}

/** A uint32 storage buffer filled with 0xFFFFFFFF, the integer counterpart of {@link poisoned}. */
export function poisonedU32(gpu: Gpu, label: string, count: number): GPUBuffer {
  return gpu.storage(label, new Uint32Array(count).fill(0xFFFFFFFF));
}
