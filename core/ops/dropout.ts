/**
 * Typed bindings of `wgsl/dropout.wgsl`: inverted dropout and alpha dropout with a Philox mask
 * keyed by (seed, stream, step, element), the step read on the GPU from `counters[counterIndex]`.
 * The backward regenerates the forward's mask, so nothing is stored between the passes; it must
 * run before the trainer's step counter advances.
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
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import src from "../../wgsl/dropout.wgsl" with { type: "text" };

/** `wgsl/dropout.wgsl`. */
export const DROPOUT_KERNEL: KernelSource = wgsl("dropout", src);

/** α' = −λα = −SELU_scale·SELU_α, the value alpha dropout gives dropped units before its affine. */
export const ALPHA_DROPOUT_VALUE = -1.7580993408473766;

/**
 * The key of a Philox random stream: `seed` and `stream` are fixed when the Dispatch is made, the
 * step is read by the kernel from `counters[counterIndex]` (a u32 storage buffer the trainer
 * advances on the GPU).
 */
export interface RandomStreamArgs {
  /** The run's seed, a u32. */
  seed: number;
  /** Which stream of the seed: a u32 that differs between the random ops of one model. */
  stream: number;
  /** The step counters, `array<u32>`. */
  counters: GPUBuffer;
  /**
   * Which counter holds the step; default 0. The trainer's per-micro-batch key is
   * `GLOBAL_MICRO_STEP` of core/counters.ts.
   */
  counterIndex?: number;
}

/** Checks a {@link RandomStreamArgs} and returns its counter index, naming `label` on failure. */
export function checkRandomStream(args: RandomStreamArgs, label: string): number {
  for (const [name, value] of [["seed", args.seed], ["stream", args.stream]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xFFFFFFFF) {
      throw new RangeError(`${label}: ${name} must be an integer in [0, 2^32), got ${value}`);
    }
  }
  const counterIndex = args.counterIndex ?? 0;
  const counters = args.counters.size / 4;
  if (!Number.isInteger(counterIndex) || counterIndex < 0 || counterIndex >= counters) {
    throw new RangeError(
      `${label}: counterIndex ${counterIndex} is outside the ${counters} counters of buffer "${args.counters.label}"`,
    );
  }
  return counterIndex;
}

/** What {@link dropoutForward} and {@link dropoutBackward} share. */
export interface DropoutArgs extends RandomStreamArgs {
  /** Number of elements. */
  n: number;
  /** Drop probability, 0 ≤ p < 1. */
  p: number;
  /** Alpha dropout (for SELU networks) instead of inverted dropout. */
  alpha?: boolean;
  /** Forward only: x's and y's storage type; default f32. Gradients are f32. */
  storage?: Storage;
  label?: string;
}

/** (scale, shift, dropped) of the kernel's uniform, computed in float64. */
function affine(p: number, alpha: boolean): [number, number, number] {
  if (!alpha) return [1 / (1 - p), 0, 0];
  const a = 1 / Math.sqrt((1 - p) * (1 + p * ALPHA_DROPOUT_VALUE * ALPHA_DROPOUT_VALUE));
  const b = -a * ALPHA_DROPOUT_VALUE * p;
  return [a, b, a * ALPHA_DROPOUT_VALUE + b];
}

async function dropoutDispatch(
  kernels: KernelCache,
  args: DropoutArgs,
  direction: "forward" | "backward",
  input: GPUBuffer,
  output: GPUBuffer,
  accumulate: boolean,
): Promise<Dispatch> {
  const entry = `${args.alpha ? "alpha_dropout" : "dropout"}_${direction}`;
  const label = args.label ?? entry;
  if (!Number.isInteger(args.n) || args.n < 0) {
    throw new RangeError(`${label}: n must be a non-negative integer, got ${args.n}`);
  }
  if (!(args.p >= 0 && args.p < 1)) {
    throw new RangeError(`${label}: drop probability p must be in [0, 1), got ${args.p}`);
  }
  const counterIndex = checkRandomStream(args, label);
  const type = direction === "forward" ? args.storage ?? "f32" : "f32";
  const [inName, outName] = direction === "forward" ? ["x", "y"] : ["dy", "dx"];
  checkBuffers(label, { [inName]: [input, args.n, type], [outName]: [output, args.n, type] });
  const [scale, shift, dropped] = affine(args.p, args.alpha ?? false);
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", args.n],
      ["f32", args.p],
      ["u32", args.seed],
      ["u32", args.stream],
      ["u32", counterIndex],
      ["f32", scale],
      ["f32", shift],
      ["f32", dropped],
    ]),
  );
  return await kernels.dispatch({
    kernel: DROPOUT_KERNEL,
    entry,
    constants: direction === "backward" ? { ACCUMULATE: accumulate } : {},
    storage: { X_T: type },
    bindings: [input, output, args.counters, params],
    workgroups: grid(Math.ceil(args.n / 4), 256),
    label,
  });
}

/**
 * Dropout forward: y = keep ? x/(1−p) : 0, or with `alpha` y = a·(keep ? x : α') + b
 * (PyTorch nn.AlphaDropout). `x` and `y` must be different buffers.
 */
export function dropoutForward(
  kernels: KernelCache,
  args: DropoutArgs & { x: GPUBuffer; y: GPUBuffer },
): Promise<Dispatch> {
  return dropoutDispatch(kernels, args, "forward", args.x, args.y, false);
}

/**
 * Dropout backward with the forward's mask (same seed, stream and counter value):
 * dx = keep ? dy/(1−p) : 0, or with `alpha` dx = keep ? a·dy : 0; `accumulate` adds into dx.
 */
export function dropoutBackward(
  kernels: KernelCache,
  args: DropoutArgs & { dy: GPUBuffer; dx: GPUBuffer; accumulate?: boolean },
): Promise<Dispatch> {
  return dropoutDispatch(kernels, args, "backward", args.dy, args.dx, args.accumulate ?? false);
}
