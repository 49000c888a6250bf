/**
 * Typed binding of `wgsl/label_losses.wgsl`: binary cross-entropy with logits and mean squared
 * error against one-hot targets, both from the batch's integer labels, with accuracy and the
 * predictions' gradient, in one dispatch made once.
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
import type { MixupTargets } from "./softmax_cross_entropy.ts";
import src from "../../wgsl/label_losses.wgsl" with { type: "text" };

/** `wgsl/label_losses.wgsl`. */
export const LABEL_LOSSES_KERNEL: KernelSource = wgsl("label_losses", src);

/** Arguments of {@link labelLoss}. */
export interface LabelLossArgs {
  kind: "bce" | "mse";
  /** bce: z[rows]; mse: p[rows, classes]. */
  preds: GPUBuffer;
  labels: GPUBuffer;
  loss: GPUBuffer;
  correct: GPUBuffer;
  /** The predictions' gradient, f32; omitted (or gradScale 0) for evaluation. */
  grad?: GPUBuffer;
  rows: number;
  /** mse: the prediction width K (bce: 1). */
  classes: number;
  validRows?: number;
  gradScale?: number;
  mixup?: MixupTargets;
  storage?: Storage;
  label?: string;
}

const dummies = new WeakMap<Gpu, GPUBuffer>();

function dummy(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu);
  if (!b) {
    b = gpu.storage("label_losses unused grad", 16);
    dummies.set(gpu, b);
  }
  return b;
}

/** The loss dispatch: writes loss, correct and (when training) the gradient. */
export async function labelLoss(kernels: KernelCache, args: LabelLossArgs): Promise<Dispatch> {
  const label = args.label ?? `label_losses.${args.kind}`;
  const { rows } = args;
  const classes = args.kind === "bce" ? 1 : args.classes;
  const validRows = args.validRows ?? rows;
  const gradScale = args.gradScale ?? (validRows > 0 ? 1 / validRows : 0);
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(classes) || classes < 1) {
    throw new RangeError(`${label}: rows ${rows} and classes ${classes} must be positive integers`);
  }
  if (!Number.isInteger(validRows) || validRows < 0 || validRows > rows) {
    throw new RangeError(
      `${label}: validRows must be an integer in [0, ${rows}], got ${validRows}`,
    );
  }
  const writeGrad = args.grad !== undefined && args.gradScale !== 0;
  const type = args.storage ?? "f32";
  checkBuffers(label, {
    preds: [args.preds, rows * classes, type],
    labels: [args.labels, rows],
    loss: [args.loss, rows],
    correct: [args.correct, rows],
    grad: writeGrad ? [args.grad!, rows * classes] : undefined,
    "mixup.labels2": args.mixup ? [args.mixup.labels2, rows] : undefined,
    "mixup.lambda": args.mixup ? [args.mixup.lambda, 1] : undefined,
  });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", rows], ["u32", classes], ["u32", validRows], ["f32", gradScale]]),
  );
  return await kernels.dispatch({
    kernel: LABEL_LOSSES_KERNEL,
    entry: args.kind,
    storage: { L_T: type },
    constants: { MIXUP: args.mixup !== undefined, WRITE_GRAD: writeGrad },
    bindings: [
      args.preds,
      args.labels,
      args.mixup?.labels2 ?? args.labels,
      args.mixup?.lambda ?? args.labels,
      args.loss,
      args.correct,
      writeGrad ? args.grad! : dummy(kernels.gpu),
      params,
    ],
    workgroups: grid(rows, 64),
    label,
  });
}
