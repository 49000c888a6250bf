/**
 * Wall-clock timing of GPU work the way every bench number is taken: `count` operations encoded
 * back to back into one submission, one wait at the end (a readback of `wait`), median of
 * `repeats`. Never used in tests.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encode } from "../gpu/kernels.ts";

/** Median of a list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds per repeat (median) of `encode` run once, then waited for by reading `wait`. */
export async function timeGpu(
  gpu: Gpu,
  encode: (encoder: GPUCommandEncoder) => void,
  wait: GPUBuffer,
  repeats: number,
): Promise<number> {
  const once = async () => {
    const start = performance.now();
    const encoder = gpu.device.createCommandEncoder({ label: "bench" });
    encode(encoder);
    gpu.submit([encoder.finish()]);
    await gpu.read(wait, Math.min(16, wait.size));
    return (performance.now() - start) / 1000;
  };
  await once(); // warm-up: pipelines, first-use allocation
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) times.push(await once());
  return median(times);
}

/** Seconds per repeat (median) of `dispatch` encoded `count` times in one compute pass. */
export function timeDispatch(
  gpu: Gpu,
  dispatch: Dispatch,
  count: number,
  wait: GPUBuffer,
  repeats: number,
): Promise<number> {
  return timeGpu(
    gpu,
    (encoder) => {
      const pass = encoder.beginComputePass({ label: `bench ${dispatch.label}` });
      for (let i = 0; i < count; i++) encode(pass, [dispatch]);
      pass.end();
    },
    wait,
    repeats,
  );
}
