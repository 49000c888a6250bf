/**
 * Typed binding of `wgsl/predictions.wgsl`: a batch's predictions counted into a confusion matrix
 * (with binary scores for an ROC curve), and the logits of test-time views summed.
 *
 * @module
 */

import {
  type BufferRef,
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import src from "../../wgsl/predictions.wgsl" with { type: "text" };

/** `wgsl/predictions.wgsl`. */
export const PREDICTIONS_KERNEL: KernelSource = wgsl("predictions", src);

/** Arguments of {@link countPredictions}. */
export interface CountPredictionsArgs {
  /** The batch's predictions [batch, width]: logits of `classes` classes, or one binary logit. */
  logits: BufferRef;
  /** The batch's labels [batch] (u32). */
  labels: GPUBuffer;
  /**
   * The counts (u32) `classes² + 1`: [label·classes + prediction] += 1 per valid row, the last
   * for labels ≥ classes; cleared by the caller.
   */
  counts: GPUBuffer;
  batch: number;
  /** Rows to count (the valid rows of a partial last batch); default batch. */
  rows?: number;
  /** Values per row: `classes`, or 1 for one binary logit (then classes = 2). */
  width: number;
  classes: number;
  /**
   * Binary scores, written at the rows' split positions `cursor[cursorIndex]·batch + r`: the
   * logit (width 1) or z₁ − z₀ (width 2); `count` positions.
   */
  scores?: { buffer: GPUBuffer; count: number; cursor: GPUBuffer; cursorIndex?: number };
  /** logits' storage type; default f32. */
  storage?: Storage;
  label?: string;
}

/** Counts each valid row's prediction against its label (and writes binary scores). */
export async function countPredictions(
  kernels: KernelCache,
  args: CountPredictionsArgs,
): Promise<Dispatch> {
  const label = args.label ?? "count_predictions";
  const { batch, width, classes } = args;
  const rows = args.rows ?? batch;
  for (const [name, v] of [["batch", batch], ["width", width], ["classes", classes]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(rows) || rows < 0 || rows > batch) {
    throw new RangeError(`${label}: rows must be an integer in [0, ${batch}], got ${rows}`);
  }
  if (width === 1 ? classes !== 2 : width !== classes) {
    throw new RangeError(
      `${label}: ${width} values per row cannot predict ${classes} classes (one logit is binary)`,
    );
  }
  const scores = args.scores;
  if (scores && width > 2) {
    throw new RangeError(`${label}: scores are for binary predictions, not ${width} classes`);
  }
  checkBuffers(label, {
    logits: [args.logits, batch * width, args.storage],
    labels: [args.labels, batch],
    counts: [args.counts, classes * classes + 1],
    scores: scores ? [scores.buffer, scores.count] : undefined,
  });
  const gpu = kernels.gpu;
  const cursor = scores?.cursor ?? gpu.storage(`${label} no cursor`, 16);
  const params = gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", rows],
      ["u32", width],
      ["u32", classes],
      ["u32", scores ? 1 : 0],
      ["u32", scores?.cursorIndex ?? 0],
      ["u32", batch],
      ["u32", scores?.count ?? 0],
      ["u32", 0],
    ]),
  );
  return await kernels.dispatch({
    kernel: PREDICTIONS_KERNEL,
    entry: "count_predictions",
    storage: { X_T: args.storage ?? "f32" },
    bindings: [
      args.logits,
      args.labels,
      args.counts,
      scores?.buffer ?? gpu.storage(`${label} no scores`, 16),
      cursor,
      params,
    ],
    workgroups: grid(Math.max(rows, 1), 64),
    label,
  });
}

/** sum = (accumulate ? sum : 0) + logits over n values (logits in `storage`, sum f32). */
export async function sumLogits(
  kernels: KernelCache,
  args: {
    logits: BufferRef;
    sum: GPUBuffer;
    n: number;
    accumulate: boolean;
    storage?: Storage;
    label?: string;
  },
): Promise<Dispatch> {
  const label = args.label ?? "sum_logits";
  if (!Number.isInteger(args.n) || args.n < 1) {
    throw new RangeError(`${label}: n must be a positive integer, got ${args.n}`);
  }
  checkBuffers(label, { logits: [args.logits, args.n, args.storage], sum: [args.sum, args.n] });
  const params = kernels.gpu.uniform(
    `${label} params`,
    packUniform([["u32", args.n], ["u32", args.accumulate ? 1 : 0]]),
  );
  return await kernels.dispatch({
    kernel: PREDICTIONS_KERNEL,
    entry: "sum_logits",
    storage: { X_T: args.storage ?? "f32" },
    bindings: [args.logits, args.sum, params],
    workgroups: grid(args.n, 256),
    label,
  });
}
