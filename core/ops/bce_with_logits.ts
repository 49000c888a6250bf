/**
 * Typed binding of `wgsl/bce_with_logits.wgsl`: elementwise binary cross-entropy with logits, an
 * optional pos_weight, and the logits' gradient, in one dispatch made once and encoded every step.
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import type { Gpu } from "../gpu/device.ts";
import src from "../../wgsl/bce_with_logits.wgsl" with { type: "text" };

/** `wgsl/bce_with_logits.wgsl`. */
export const BCE_WITH_LOGITS_KERNEL: KernelSource = wgsl("bce_with_logits", src);

/** Arguments of {@link bceWithLogits}. */
export interface BceWithLogitsArgs {
  /** x[n], f32. */
  logits: GPUBuffer;
  /** y[n], f32 in [0, 1]. */
  targets: GPUBuffer;
  /** loss[n], f32, written. */
  loss: GPUBuffer;
  /** dx[n], f32; omitted (or gradScale 0) for evaluation: then it is not written. */
  grad?: GPUBuffer;
  n: number;
  /** Elements at or beyond this get loss 0 and gradient 0; default `n`. */
  validCount?: number;
  /** w_p ≥ 0 weighting the positive term; default 1 (off). */
  posWeight?: number;
  /** Multiplies the gradient; default 1/validCount (the mean over the elements that count). */
  gradScale?: number;
  label?: string;
}

const dummies = new WeakMap<Gpu, GPUBuffer>();

/** A 4-byte writable buffer per device, bound where the evaluation mode writes no gradient. */
function dummyGrad(gpu: Gpu): GPUBuffer {
  let buffer = dummies.get(gpu);
  if (!buffer) {
    buffer = gpu.storage("bce_with_logits unused grad", 4);
    dummies.set(gpu, buffer);
  }
  return buffer;
}

/**
 * The BCE-with-logits dispatch: writes `loss` and (with `grad` and a non-zero `gradScale`) the
 * gradient `gradScale·∂loss/∂x` over n elements.
 */
export function bceWithLogits(kernels: KernelCache, args: BceWithLogitsArgs): Promise<Dispatch> {
  const label = args.label ?? "bce_with_logits";
  const { n } = args;
  const validCount = args.validCount ?? n;
  const posWeight = args.posWeight ?? 1;
  const gradScale = args.gradScale ?? (validCount > 0 ? 1 / validCount : 0);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${label}: n must be a positive integer, got ${n}`);
  }
  if (!Number.isInteger(validCount) || validCount < 0 || validCount > n) {
    throw new RangeError(`${label}: validCount must be an integer in [0, ${n}], got ${validCount}`);
  }
  if (!(posWeight >= 0 && Number.isFinite(posWeight))) {
    throw new RangeError(`${label}: posWeight must be finite and ≥ 0, got ${posWeight}`);
  }
  if (!Number.isFinite(gradScale)) {
    throw new RangeError(`${label}: gradScale must be finite, got ${gradScale}`);
  }
  // Only an explicit gradScale of 0 means evaluation (validCount = 0 still writes zeros).
  const writeGrad = args.grad !== undefined && args.gradScale !== 0;
  const buffers: [string, GPUBuffer | undefined][] = [
    ["logits", args.logits],
    ["targets", args.targets],
    ["loss", args.loss],
    ["grad", writeGrad ? args.grad : undefined],
  ];
  for (const [name, buffer] of buffers) {
    if (buffer && buffer.size < n * 4) {
      throw new RangeError(
        `${label}: buffer ${name} ("${buffer.label}") has ${buffer.size} bytes, needs ${n * 4}`,
      );
    }
  }
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", n], ["u32", validCount], ["f32", posWeight], ["f32", gradScale]]),
  );
  return kernels.dispatch({
    kernel: BCE_WITH_LOGITS_KERNEL,
    constants: { WRITE_GRAD: writeGrad },
    bindings: [
      args.logits,
      args.targets,
      args.loss,
      writeGrad ? args.grad! : dummyGrad(kernels.gpu),
      params,
    ],
    workgroups: grid(n, 256),
    label,
  });
}
