/**
 * The training step of a built run: its {@link StepParts} (gather → mixup → forward → loss →
 * backward over the micro-batches, Σg², the optimizer's update, the counters) and the phase list
 * the optimizer makes of them — its own `step` hook, else {@link defaultStep} — followed by the
 * EMAs' update when the run has any.
 *
 * @module
 */

import type { Dispatch, KernelCache } from "../gpu/kernels.ts";
import {
  advanceCounters,
  createCounters,
  EPOCH_MICRO_STEP,
  GLOBAL_MICRO_STEP,
  OPTIMIZER_STEP,
} from "../gpu/counters.ts";
import { parseFreeze } from "./config.ts";
import { ModelPlan } from "./plan.ts";
import { segmentReduce } from "../ops/reduce.ts";
import { mixup } from "../ops/mixup.ts";
import type { BuiltRun } from "./build.ts";
import { gatherFor } from "./data.ts";
import {
  clearPhase,
  defaultStep,
  dispatchPhase,
  type PassOptions,
  type Phase,
  repeatPhase,
  type StepParts,
} from "./step.ts";

/** A run's training step. */
export interface TrainStep {
  /** One optimizer step, as data (see core/train/step.ts). */
  phases: Phase[];
  /**
   * Sums over the training batches since it was last cleared: [0] the main term's values,
   * [1] correct flags, [2 + i] loss term i's values (see {@link metricSums}).
   */
  metrics: GPUBuffer;
  /** Its size in bytes. */
  metricBytes: number;
  /** The epoch's shuffled row order, which the gather reads (written once per epoch). */
  epochIndices: GPUBuffer;
}

/**
 * The plan's last batch summed into `acc`: [at] Σ of the main term's `rows` values, [at + 1] Σ
 * correct flags, and with `terms` [at + 2 + i] Σ of term i's values.
 */
export async function metricSums(
  kernels: KernelCache,
  plan: ModelPlan,
  acc: GPUBuffer,
  rows: number,
  terms = false,
  at = 0,
): Promise<Dispatch[]> {
  const sum = (x: GPUBuffer, count: number, outOffset: number, label: string) =>
    segmentReduce(kernels, {
      x,
      offsets: [0, count],
      out: acc,
      outOffset: at + outOffset,
      accumulate: true,
      label,
    });
  const out = [
    ...await sum(plan.lossRows, rows, 0, "Σ loss"),
    ...await sum(plan.correctRows, rows, 1, "Σ correct"),
  ];
  if (terms) {
    for (const [i, t] of plan.terms.entries()) {
      out.push(...await sum(t.values, t.size, 2 + i, `Σ loss term ${t.name}`));
    }
  }
  return out;
}

/** Bytes of a metric accumulator for a plan's terms (16-byte multiple). */
export function metricBytes(plan: ModelPlan): number {
  return Math.ceil(((2 + plan.terms.length) * 4) / 16) * 16;
}

/** Builds the step's parts and asks the optimizer (or the default recipe) to join them. */
export async function buildStep(run: BuiltRun): Promise<TrainStep> {
  const { gpu, kernels, plan, counters, settings, data, optimizer } = run;
  const { batch, accum } = settings;
  const bytes = metricBytes(plan);
  const metrics = gpu.storage("train metrics Σ", bytes);
  const epochIndices = gpu.storage("epoch permutation", Math.max(1, data.fitCount) * 4);
  const gather = await gatherFor(kernels, data.train, data.dataset, {
    indices: epochIndices,
    indexCount: data.fitCount,
    cursor: counters,
    cursorIndex: EPOCH_MICRO_STEP,
    x: plan.x,
    y: plan.labels,
    batch,
    chunkRows: data.trainFeed?.chunkRows,
    augment: data.augment,
    storage: plan.precision,
    label: "gather train batch",
  });
  const mixing: Dispatch[] = run.mixup
    ? [
      await mixup(kernels, {
        x: plan.x,
        labels: plan.labels,
        labels2: run.mixup.labels2,
        lambdas: run.mixup.table,
        tableLength: run.mixup.micros,
        counters,
        counterIndex: GLOBAL_MICRO_STEP,
        lambdaOut: run.mixup.lambda,
        batch,
        features: data.dataset.info.features,
        storage: plan.precision,
      }),
    ]
    : [];
  const forwardBackward = [gather, ...mixing, ...plan.trainForward, ...plan.backward];
  const sums = await metricSums(kernels, plan, metrics, batch, true);
  const nextMicro = await advanceCounters(
    kernels,
    counters,
    { [EPOCH_MICRO_STEP]: 1, [GLOBAL_MICRO_STEP]: 1 },
    "next micro-batch",
  );
  // u32 counters wrap, so adding 2³² − K moves them back K micro-batches.
  const rewind = await advanceCounters(
    kernels,
    counters,
    { [EPOCH_MICRO_STEP]: 2 ** 32 - accum, [GLOBAL_MICRO_STEP]: 2 ** 32 - accum },
    "back to the step's first micro-batch",
  );
  let samples: ReturnType<typeof samplePass> | undefined;
  const gradNormSq = dispatchPhase(
    "Σg²",
    await segmentReduce(kernels, {
      x: plan.grads,
      offsets: [0, Math.max(plan.layout.trainableTotal, 1)],
      out: optimizer.context.gradNorm,
      square: true,
      label: "Σg²",
    }),
  );
  const parts: StepParts = {
    microBatches: accum,
    clearGrads: clearPhase("zero gradients", plan.grads),
    pass(options: PassOptions = {}) {
      const micro = [...forwardBackward, ...(options.metrics ?? true ? sums : []), nextMicro];
      // The f16 weight copy is refreshed before each pass: the weights may have moved since.
      const phases: Phase[] = [
        ...(options.again ? [dispatchPhase("rewind counters", [rewind])] : []),
        ...(plan.refreshWeights.length > 0
          ? [dispatchPhase("refresh f16 weights", plan.refreshWeights)]
          : []),
        repeatPhase("micro-batches", accum, [dispatchPhase("forward+backward", micro)]),
      ];
      return phases.length === 1
        ? phases[0]!
        : repeatPhase(options.again ? "pass again" : "pass", 1, phases);
    },
    gradNormSq,
    gradNormBuffer: optimizer.context.gradNorm,
    update: dispatchPhase(`${optimizer.plugin.name} update`, optimizer.update),
    advanceStep: dispatchPhase(
      "next optimizer step",
      [await advanceCounters(kernels, counters, { [OPTIMIZER_STEP]: 1 }, "next optimizer step")],
    ),
    clipping: settings.maxGradNorm > 0,
    stepsPerEpoch: data.stepsPerEpoch,
    epochs: settings.epochs,
    async sampleGradients(count: number, after: readonly Dispatch[]) {
      samples ??= samplePass(run, epochIndices);
      const { cursor, micro, next } = await samples;
      const rows = Math.min(count, data.fitCount);
      return repeatPhase("per-sample gradients", 1, [
        // The row cursor restarts; the dropout counter continues from the run's micro-steps.
        clearPhase("per-sample row cursor", cursor, 0, 4),
        {
          kind: "copy",
          label: "per-sample dropout counter",
          from: counters,
          fromOffset: GLOBAL_MICRO_STEP * 4,
          to: cursor,
          toOffset: 4,
          size: 4,
        },
        ...(plan.refreshWeights.length > 0
          ? [dispatchPhase("refresh f16 weights", plan.refreshWeights)]
          : []),
        repeatPhase("rows", rows, [
          clearPhase("zero gradients", plan.grads),
          dispatchPhase("one row forward+backward", [...micro, ...after, next]),
        ]),
      ]);
    },
  };
  const hook = optimizer.plugin.step;
  const phases = hook ? await hook(parts, optimizer.context, run.config) : await defaultStep(parts);
  // The EMAs average the weights the whole step left (whatever the optimizer's phases were),
  // reading the advanced step counter.
  if (run.ema) phases.push(run.ema.update);
  return { phases, metrics, metricBytes: bytes, epochIndices };
}

/**
 * The batch-1 plan of the run's model over its own weights and gradient buffer, its row gather
 * from the epoch's order at `cursor[0]`, and the dispatch moving to the next row (and dropout
 * counter, `cursor[1]`).
 */
async function samplePass(run: BuiltRun, epochIndices: GPUBuffer): Promise<{
  cursor: GPUBuffer;
  micro: Dispatch[];
  next: Dispatch;
}> {
  const { gpu, kernels, plan, data, settings } = run;
  const cursor = createCounters(gpu, "per-sample row cursor");
  const graph = await run.modelGraph(1);
  const one = await ModelPlan.build({
    gpu,
    kernels,
    graph,
    ops: run.ops,
    counters: cursor,
    randomCounter: 1,
    // Its own random streams: a row's dropout mask is not a training micro-batch's.
    seed: (settings.seed ^ 0x5a3a3e1) >>> 0,
    microBatches: 1,
    frozen: parseFreeze(run.config.freeze),
    precision: settings.precision,
    shared: { params: plan.params, params16: plan.params16, grads: plan.grads },
  });
  const same = one.layout.total === plan.layout.total &&
    one.layout.segments.every((s, i) => s.offset === plan.layout.segments[i]?.offset);
  if (!same) {
    throw new RangeError(
      `model "${run.config.model}" lays out its parameters differently at batch size 1 than at ${settings.batch}; per-sample gradients need the same layout`,
    );
  }
  const gather = await gatherFor(kernels, data.train, data.dataset, {
    indices: epochIndices,
    indexCount: data.fitCount,
    cursor,
    cursorIndex: 0,
    x: one.x,
    y: one.labels,
    batch: 1,
    storage: plan.precision,
    label: "gather one training row",
  });
  const next = await advanceCounters(kernels, cursor, { 0: 1, 1: 1 }, "next row");
  return { cursor, micro: [gather, ...one.trainForward, ...one.backward], next };
}
