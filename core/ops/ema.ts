/**
 * Typed binding of `wgsl/ema.wgsl`: an exponential moving average of the weights whose β of every
 * step comes from a table read at the GPU step counter, so it is updated inside the training
 * step's command buffer with no CPU work (the power-function EMA of core/train/ema.ts).
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
  wgsl,
} from "../gpu/kernels.ts";
import src from "../../wgsl/ema.wgsl" with { type: "text" };

/** `wgsl/ema.wgsl`. */
export const EMA_KERNEL: KernelSource = wgsl("ema", src);

/** What {@link emaUpdate} averages. */
export interface EmaArgs {
  /** The flat weights (f32, n). */
  weights: GPUBuffer;
  /** The average (f32, n), updated in place. */
  ema: GPUBuffer;
  /** Values averaged. */
  n: number;
  /** The step counters (`array<u32>`). */
  counters: GPUBuffer;
  /** Which counter holds t, the optimizer steps taken (read after it advanced); default 0. */
  counterIndex?: number;
  /** 1 − β_t for t = 0, 1, … (f32, at least one). */
  table: GPUBuffer;
  label?: string;
}

/** ema ← ema + (1 − β_t)·(weights − ema), with t = counters[counterIndex] and 1 − β_t = table[t]. */
export function emaUpdate(kernels: KernelCache, args: EmaArgs): Promise<Dispatch> {
  const label = args.label ?? "ema_update";
  const counterIndex = args.counterIndex ?? 0;
  if (!Number.isInteger(args.n) || args.n < 1) {
    return Promise.reject(new RangeError(`${label}: n must be an integer ≥ 1, got ${args.n}`));
  }
  if (
    !Number.isInteger(counterIndex) || counterIndex < 0 || 4 * counterIndex >= args.counters.size
  ) {
    return Promise.reject(
      new RangeError(
        `${label}: counterIndex ${counterIndex} is outside the counters of "${args.counters.label}"`,
      ),
    );
  }
  checkBuffers(label, {
    weights: [args.weights, args.n],
    ema: [args.ema, args.n],
    table: [args.table, 1],
  });
  const setup = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", args.n], ["u32", counterIndex]]),
  );
  return kernels.dispatch({
    kernel: EMA_KERNEL,
    entry: "ema_update",
    bindings: [args.weights, args.ema, args.counters, args.table, setup],
    workgroups: grid(args.n, 256),
    label,
  });
}
