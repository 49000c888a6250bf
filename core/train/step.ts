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
  }
  | {
    readonly kind: "when";
    readonly label: string;
    /** Whether the step at this position records the phases (decided on the CPU, per step). */
    readonly test: (at: StepPosition) => boolean;
    readonly phases: readonly Phase[];
  };

/** Where a step stands in the run: what a {@link whenPhase} decides on. */
export interface StepPosition {
  /** The epoch (0-based). */
  readonly epoch: number;
  /** The step within the epoch (0-based). */
  readonly stepInEpoch: number;
  /** Optimizer steps taken before this one in the whole run. */
  readonly step: number;
}

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
 * Phases recorded only in the steps where `test(position)` holds — periodic work such as a mask
 * update at the first step of every few epochs. The encoder decides on the CPU, so a step
 * without it records nothing of it and the GPU never branches.
 */
export function whenPhase(
  label: string,
  test: (at: StepPosition) => boolean,
  phases: readonly Phase[],
): Phase {
  return { kind: "when", label, test, phases };
}

/**
 * Records `steps` copies of `phases` into `encoder`: consecutive dispatches share one compute
 * pass (one per step when nothing else intervenes), clears and copies go between passes. `at`
 * is the position of the first step (the others follow it within its epoch); phases made with
 * {@link whenPhase} need it.
 */
export function encodeSteps(
  encoder: GPUCommandEncoder,
  phases: readonly Phase[],
  steps = 1,
  label = "training step",
  at?: StepPosition,
): void {
  let pass: GPUComputePassEncoder | undefined;
  const end = () => {
    pass?.end();
    pass = undefined;
  };
  const walk = (list: readonly Phase[], position: StepPosition | undefined) => {
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
          for (let i = 0; i < p.times; i++) walk(p.phases, position);
          break;
        case "when":
          if (!position) {
            throw new RangeError(
              `phase "${p.label}" runs only at some steps: encodeSteps needs the steps' position`,
            );
          }
          if (p.test(position)) walk(p.phases, position);
          break;
      }
    }
  };
  for (let s = 0; s < steps; s++) {
    walk(
      phases,
      at && { epoch: at.epoch, stepInEpoch: at.stepInEpoch + s, step: at.step + s },
    );
    end();
  }
}

/** The labels of a step's phases, nested ones as `group/label ×n` (for tests and debugging). */
export function describeSteps(phases: readonly Phase[]): string[] {
  return phases.flatMap((p) =>
    p.kind === "repeat"
      ? [`${p.label} ×${p.times}`, ...describeSteps(p.phases).map((l) => `  ${l}`)]
      : p.kind === "when"
      ? [`when ${p.label}`, ...describeSteps(p.phases).map((l) => `  ${l}`)]
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
  /** Optimizer steps per epoch. */
  readonly stepsPerEpoch: number;
  /** Epochs of the run. */
  readonly epochs: number;
  /**
   * Per-sample gradients: `count` rows of the epoch's shuffled order (its first ones, at most
   * all of them), each through a batch-1 copy of the model over the same weights (training mode,
   * the run's loss) — the gradient buffer cleared before each row, then `after` (e.g. adding g²
   * into a Fisher score). The gradient buffer holds the last row's gradient afterwards. Built on
   * first use.
   */
  sampleGradients(count: number, after: readonly Dispatch[]): Promise<Phase>;
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
