/**
 * The step as data. A training step is a list of {@link Phase}s built once — clears, copies,
 * dispatch lists and repeated groups (the micro-batches of gradient accumulation) — that
 * {@link encodeSteps} records into a command encoder with no knowledge of what is inside: it opens
 * a compute pass for consecutive dispatches and closes it around clears and copies.
 *
 * {@link StepParts} are the pieces a step is made of (a forward+backward pass over the step's
 * micro-batches, the gradient clear, Σg², the optimizer's update, the step counter); the default
 * recipe is {@link defaultStep}, and an optimizer plugin may return its own list from its `step`
 * hook, e.g. SAM's pass → perturb → pass → restore → update.
 *
 * @module
 */

import { type Dispatch, encode } from "../gpu/kernels.ts";

/** One piece of a step: what to record, as data. */
export type Phase =
  | { readonly kind: "dispatch"; readonly label: string; readonly dispatches: readonly Dispatch[] }
  | {
    readonly kind: "clear";
    readonly label: string;
    readonly buffer: GPUBuffer;
    readonly offset?: number;
    readonly size?: number;
  }
  | {
    readonly kind: "copy";
    readonly label: string;
    readonly from: GPUBuffer;
    readonly fromOffset: number;
    readonly to: GPUBuffer;
    readonly toOffset: number;
    readonly size: number;
  }
  | {
    readonly kind: "repeat";
    readonly label: string;
    readonly times: number;
    readonly phases: readonly Phase[];
  };

/** A dispatch phase. */
export function dispatchPhase(label: string, dispatches: readonly Dispatch[]): Phase {
  return { kind: "dispatch", label, dispatches };
}

/** A phase that zeroes a buffer (or a byte range of it). */
export function clearPhase(
  label: string,
  buffer: GPUBuffer,
  offset?: number,
  size?: number,
): Phase {
  return { kind: "clear", label, buffer, offset, size };
}

/** A group of phases recorded `times` times in a row. */
export function repeatPhase(label: string, times: number, phases: readonly Phase[]): Phase {
  if (!Number.isInteger(times) || times < 0) {
    throw new RangeError(`phase "${label}": repeat count ${times} must be an integer ≥ 0`);
  }
  return { kind: "repeat", label, times, phases };
}

/**
 * Records `steps` copies of `phases` into `encoder`: consecutive dispatches share one compute
 * pass (one per step when nothing else intervenes), clears and copies go between passes.
 */
export function encodeSteps(
  encoder: GPUCommandEncoder,
  phases: readonly Phase[],
  steps = 1,
  label = "training step",
): void {
  let pass: GPUComputePassEncoder | undefined;
  const end = () => {
    pass?.end();
    pass = undefined;
  };
  const walk = (list: readonly Phase[]) => {
    for (const p of list) {
      switch (p.kind) {
        case "dispatch":
          pass ??= encoder.beginComputePass({ label });
          encode(pass, p.dispatches);
          break;
        case "clear":
          end();
          encoder.clearBuffer(p.buffer, p.offset, p.size);
          break;
        case "copy":
          end();
          encoder.copyBufferToBuffer(p.from, p.fromOffset, p.to, p.toOffset, p.size);
          break;
        case "repeat":
          for (let i = 0; i < p.times; i++) walk(p.phases);
          break;
      }
    }
  };
  for (let s = 0; s < steps; s++) {
    walk(phases);
    end();
  }
}

/** The labels of a step's phases, nested ones as `group/label ×n` (for tests and debugging). */
export function describeSteps(phases: readonly Phase[]): string[] {
  return phases.flatMap((p) =>
    p.kind === "repeat"
      ? [`${p.label} ×${p.times}`, ...describeSteps(p.phases).map((l) => `  ${l}`)]
      : [`${p.kind} ${p.label}`]
  );
}

/** What a pass does besides forward and backward. */
export interface PassOptions {
  /** Add the batch's loss and correct counts to the step's training metrics (default true). */
  metrics?: boolean;
  /**
   * Re-run the micro-batches the previous pass of this step ran (same samples, same dropout
   * masks and mixup λ): the data and random counters are moved back first (default false).
   */
  again?: boolean;
}

/** The pieces of a training step, made once per run; {@link defaultStep} joins them. */
export interface StepParts {
  /** Micro-batches per optimizer step (gradient accumulation). */
  readonly microBatches: number;
  /** Zeroes the flat gradient buffer. */
  readonly clearGrads: Phase;
  /**
   * Forward and backward over the step's micro-batches (gather, mixup, forward, loss, backward,
   * parameter gradients added to the flat buffer), then the data and random counters advance.
   */
  pass(options?: PassOptions): Phase;
  /** Σg² of the flat gradients into `gradNormSq[0]` (what clipping and SAM read). */
  readonly gradNormSq: Phase;
  /** The buffer {@link gradNormSq} writes. */
  readonly gradNormBuffer: GPUBuffer;
  /** The optimizer's update (its `create` dispatches). */
  readonly update: Phase;
  /** The optimizer step counter += 1: last in every step (the lr and bias corrections read it). */
  readonly advanceStep: Phase;
  /** Whether global-norm clipping is on (then Σg² precedes the update). */
  readonly clipping: boolean;
}

/** clear → pass → [Σg² when clipping] → update → step counter. */
export function defaultStep(parts: StepParts): Phase[] {
  return [
    parts.clearGrads,
    parts.pass(),
    ...(parts.clipping ? [parts.gradNormSq] : []),
    parts.update,
    parts.advanceStep,
  ];
}
