/**
 * Typed binding of `wgsl/softmax_cross_entropy.wgsl`: per-row softmax cross-entropy with label
 * smoothing and optional mixup, the per-row correct flag, and the logits' gradient, in one
 * dispatch made once and encoded every step.
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
import type { Gpu } from "../gpu/device.ts";
import src from "../../wgsl/softmax_cross_entropy.wgsl" with { type: "text" };

/** `wgsl/softmax_cross_entropy.wgsl`. */
export const SOFTMAX_CROSS_ENTROPY_KERNEL: KernelSource = wgsl("softmax_cross_entropy", src);

/** Mixup targets: a second label per row and λ in a storage buffer (`lambda[0]`, f32). */
export interface MixupTargets {
  /** The second label of every row (u32). */
  labels2: GPUBuffer;
  /** λ, the weight of the first label (`lambda[0]`, f32). */
  lambda: GPUBuffer;
}

/** Arguments of {@link softmaxCrossEntropy}. */
export interface SoftmaxCrossEntropyArgs {
  /** Z[rows, classes], f32, row-major. */
  logits: GPUBuffer;
  /** y[rows], u32, each < classes (a larger label makes the row's loss NaN). */
  labels: GPUBuffer;
  /** loss[rows], f32, written. */
  loss: GPUBuffer;
  /** correct[rows], f32 1.0/0.0 (argmax = labels, ties to the lowest index), written. */
  correct: GPUBuffer;
  /** dZ[rows, classes], f32; omitted (or gradScale 0) for evaluation: then it is not written. */
  grad?: GPUBuffer;
  rows: number;
  classes: number;
  /** Rows at or beyond this get loss 0, correct 0, gradient 0; default `rows`. */
  validRows?: number;
  /** ε in [0, 1]; default 0. */
  labelSmoothing?: number;
  /** Multiplies the gradient; default 1/validRows (the mean over the rows that count), 0 if none. */
  gradScale?: number;
  /** Targets λ·q(y1) + (1 − λ)·q(y2); `correct` still compares with y1. */
  mixup?: MixupTargets;
  /** The logits' storage type; default f32. Everything else is f32, and so is the arithmetic. */
  storage?: Storage;
  label?: string;
}

/** Threads per row: a power of two covering `classes`, from 32 up to 256. */
export function softmaxCrossEntropyWorkgroupSize(classes: number): number {
  let wg = 32;
  while (wg < 256 && wg < classes) wg *= 2;
  return wg;
}

const dummies = new WeakMap<Gpu, GPUBuffer>();

/** A 4-byte writable buffer per device, bound where the evaluation mode writes no gradient. */
function dummyGrad(gpu: Gpu): GPUBuffer {
  let buffer = dummies.get(gpu);
  if (!buffer) {
    buffer = gpu.storage("softmax_cross_entropy unused grad", 4);
    dummies.set(gpu, buffer);
  }
  return buffer;
}

/**
 * The softmax cross-entropy dispatch: one workgroup per row writes `loss`, `correct` and (with
 * `grad` and a non-zero `gradScale`) the gradient `(p − q)·gradScale`.
 */
export function softmaxCrossEntropy(
  kernels: KernelCache,
  args: SoftmaxCrossEntropyArgs,
): Promise<Dispatch> {
  const label = args.label ?? "softmax_cross_entropy";
  const { rows, classes } = args;
  const validRows = args.validRows ?? rows;
  const smoothing = args.labelSmoothing ?? 0;
  const gradScale = args.gradScale ?? (validRows > 0 ? 1 / validRows : 0);
  if (!Number.isInteger(rows) || rows < 1) {
    throw new RangeError(`${label}: rows must be a positive integer, got ${rows}`);
  }
  if (!Number.isInteger(classes) || classes < 1) {
    throw new RangeError(`${label}: classes must be a positive integer, got ${classes}`);
  }
  if (!Number.isInteger(validRows) || validRows < 0 || validRows > rows) {
    throw new RangeError(
      `${label}: validRows must be an integer in [0, ${rows}], got ${validRows}`,
    );
  }
  if (!(smoothing >= 0 && smoothing <= 1)) {
    throw new RangeError(`${label}: labelSmoothing must be in [0, 1], got ${smoothing}`);
  }
  if (!Number.isFinite(gradScale)) {
    throw new RangeError(`${label}: gradScale must be finite, got ${gradScale}`);
  }
  const logitsType = args.storage ?? "f32";
  // Only an explicit gradScale of 0 means evaluation; the default 0 of validRows = 0 still writes
  // the zero gradient of a fully masked batch.
  const writeGrad = args.grad !== undefined && args.gradScale !== 0;
  checkBuffers(label, {
    logits: [args.logits, rows * classes, logitsType],
    labels: [args.labels, rows],
    loss: [args.loss, rows],
    correct: [args.correct, rows],
    grad: writeGrad ? [args.grad!, rows * classes] : undefined,
    "mixup.labels2": args.mixup ? [args.mixup.labels2, rows] : undefined,
    "mixup.lambda": args.mixup ? [args.mixup.lambda, 1] : undefined,
  });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", rows],
      ["u32", classes],
      ["u32", validRows],
      ["f32", smoothing],
      ["f32", gradScale],
    ]),
  );
  return kernels.dispatch({
    kernel: SOFTMAX_CROSS_ENTROPY_KERNEL,
    storage: { L_T: logitsType },
    constants: {
      WG: softmaxCrossEntropyWorkgroupSize(classes),
      MIXUP: args.mixup !== undefined,
      WRITE_GRAD: writeGrad,
    },
    // Unused bindings alias read-only inputs (labels, logits) or a per-device dummy.
    bindings: [
      args.logits,
      args.labels,
      args.mixup?.labels2 ?? args.labels,
      args.mixup?.lambda ?? args.logits,
      args.loss,
      args.correct,
      writeGrad ? args.grad! : dummyGrad(kernels.gpu),
      params,
    ],
    workgroups: grid(rows, 1),
    label,
  });
}
