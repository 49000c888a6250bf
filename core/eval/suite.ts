/**
 * One pass over a test split that measures everything the evaluation reports, batch by batch on
 * the GPU: the clean loss and accuracy with the confusion matrix (and binary scores); test-time
 * augmentation (the logits of fixed views summed, then counted); FGSM at each ε (one input
 * gradient per batch, one step per ε) and PGD at each ε (a seeded random start, then K steps),
 * untargeted, L∞ in [0, 1] pixel space with clipping, the model in evaluation mode
 * (shared/specs/algorithms.md §10). The attacks may be crafted on another model (transfer) and
 * evaluated on this one.
 *
 * The batch's raw values are gathered once (bytes as 0..255); every input the model sees is made
 * from them by a kernel (a view, an attack step), so FGSM at ε = 0 is the clean input exactly.
 * Everything is made once; each batch is one command buffer, the GPU's cursor picks the rows, and
 * the sums, counts and scores are read back once at the end.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { Dispatch, KernelCache } from "../gpu/kernels.ts";
import { advanceCounters } from "../gpu/counters.ts";
import type { Tensor } from "../graph/graph.ts";
import { ADVERSARIAL_STREAM, attackStart, attackStep } from "../ops/adversarial.ts";
import { IDENTITY_VIEW, type ImageView, imageView } from "../ops/image_view.ts";
import { countPredictions, sumLogits } from "../ops/predictions.ts";
import { gatherFor, type GpuSplit, normalisationOf, rangeIndices } from "../train/data.ts";
import type { ModelPlan } from "../train/plan.ts";
import type { DatasetSplits } from "../train/registry.ts";
import { metricSums } from "../train/recipe.ts";
import { dispatchPhase, encodeSteps, type Phase } from "../train/step.ts";

/** Batches submitted ahead of the one the CPU waits for. */
const IN_FLIGHT = 2;

/** A model to evaluate: its plan (with `inputGrad.eval` to craft attacks) and its logits. */
export interface EvalNet {
  plan: ModelPlan;
  /** The model's predictions (logits [batch, classes], or one binary logit per row). */
  predictions: Tensor;
}

/** FGSM and PGD as the robustness study ran them. */
export interface AttackSettings {
  /** FGSM radii, [0, 1] pixel units. */
  fgsm: readonly number[];
  /** PGD radii. */
  pgd: readonly number[];
  /** PGD iterations (5 in the study). */
  pgdSteps: number;
  /** PGD's step size as a fraction of ε (1/2 in the study). */
  pgdStepRatio: number;
  /** Keys PGD's random starts (with the ε's index and the batch). */
  seed: number;
}

/** What {@link makeEvalSuite} evaluates. */
export interface SuiteOptions {
  gpu: Gpu;
  kernels: KernelCache;
  /** The model evaluated. */
  target: EvalNet;
  /** The model the attacks are crafted on (transfer); default the target. Same batch size. */
  source?: EvalNet;
  /** The dataset: its info and normalisation (both models were trained on it). */
  dataset: DatasetSplits;
  /** The resident test split on the GPU; rows 0 .. count are evaluated. */
  split: GpuSplit;
  count: number;
  /** The attacks; absent: none. */
  attacks?: AttackSettings;
  /** Test-time augmentation views; absent or empty: none. */
  views?: readonly ImageView[];
  /** Write each row's binary score (two classes) for the ROC curve. */
  scores?: boolean;
}

/** Accuracy and mean loss under one attack radius. */
export interface AttackPoint {
  eps: number;
  accuracy: number;
  loss: number;
  /** Transfer: the accuracy of the model the examples were crafted on (white-box). */
  source_accuracy?: number;
}

/** What one evaluation measured. */
export interface SuiteResult {
  count: number;
  clean: { loss: number; accuracy: number };
  /** [label][prediction] counts; undefined when the predictions are not class logits. */
  confusion?: number[][];
  /** Binary scores by split position (with `scores`). */
  scores?: Float32Array;
  /** Test-time augmentation: its views and the accuracy of their summed logits. */
  tta?: { views: number; accuracy: number; confusion: number[][] };
  fgsm: AttackPoint[];
  pgd: AttackPoint[];
}

/** The logits' width, when the predictions are class logits the counts can read. */
function logitWidth(net: EvalNet, classes: number): number | undefined {
  const width = net.predictions.size / net.predictions.shape[0]!;
  return (width === classes || (width === 1 && classes === 2)) ? width : undefined;
}

/**
 * Above this many classes no confusion matrix is counted (K² counters: a word vocabulary's would
 * not fit a buffer), so neither F1 nor TTA.
 */
export const MAX_CONFUSION_CLASSES = 1024;

/** Reshapes counts [K² + 1] into a K×K matrix. */
function matrix(counts: Uint32Array, k: number): number[][] {
  return Array.from({ length: k }, (_, i) => Array.from(counts.subarray(i * k, i * k + k)));
}

/**
 * Builds the evaluation once (buffers, dispatches, the phases of a full and of the last batch);
 * the function it returns runs it and reads the results.
 */
export async function makeEvalSuite(
  o: SuiteOptions,
): Promise<(onBatch?: (done: number, total: number) => void) => Promise<SuiteResult>> {
  const { gpu, kernels, target, dataset, split, count } = o;
  const source = o.source ?? target;
  const transfer = source !== target;
  const attacks = o.attacks ?? { fgsm: [], pgd: [], pgdSteps: 0, pgdStepRatio: 0, seed: 0 };
  const views = o.views ?? [];
  const batch = target.predictions.shape[0]!;
  const { features, classes } = dataset.info;
  if (source.predictions.shape[0] !== batch) {
    throw new RangeError(
      `the attacking model's batch (${
        source.predictions.shape[0]
      }) differs from the evaluated one's (${batch})`,
    );
  }
  if (count < 1 || count > split.count || split.stream) {
    throw new RangeError(
      `evaluation needs a resident split of at least ${count} rows (it has ${split.count}${
        split.stream ? ", streamed" : ""
      })`,
    );
  }
  const needsGrad = attacks.fgsm.length + attacks.pgd.length > 0;
  if (needsGrad && !source.plan.inputGrad) {
    throw new RangeError("the attacking model's plan was built without inputGrad.eval");
  }
  const width = classes <= MAX_CONFUSION_CLASSES ? logitWidth(target, classes) : undefined;
  if (views.length > 0 && width === undefined) {
    throw new RangeError(
      `test-time augmentation needs the model's class logits (at most ${MAX_CONFUSION_CLASSES} classes)`,
    );
  }
  const { mean, std } = normalisationOf(dataset);
  const bytes = !split.float;
  const image = dataset.info.image;
  const n = batch * features;
  const cursor = gpu.storage("eval cursor", 16);
  const raw = gpu.storage("eval clean raw values", n * 4);
  const adv = gpu.storage("eval adversarial raw values", n * 4);
  const k = classes;
  const countBytes = (wanted: boolean) => (wanted ? k * k + 1 : 1) * 4;
  const counts = gpu.storage("eval confusion counts", countBytes(width !== undefined));
  const ttaCounts = gpu.storage("eval TTA confusion counts", countBytes(views.length > 0));
  const ttaSum = gpu.storage(
    "eval TTA logit sums",
    (views.length > 0 ? batch * width! : 1) * 4,
  );
  const withScores = o.scores === true && width !== undefined && width <= 2 && classes === 2;
  const scores = withScores ? gpu.storage("eval binary scores", count * 4) : undefined;
  // Sum slots (loss, correct): clean, FGSM…, PGD…, then the attacking model's FGSM…, PGD….
  const attackSlots = attacks.fgsm.length + attacks.pgd.length;
  const sums = gpu.storage("eval sums", (1 + 2 * attackSlots) * 2 * 4);
  const sourceSlot = (i: number) => 1 + attackSlots + i;

  const view = (from: GPUBuffer, to: EvalNet, v: ImageView, label: string) =>
    imageView(kernels, {
      raw: from,
      out: to.plan.x,
      batch,
      features,
      image,
      mean,
      std,
      bytes,
      view: v,
      storage: to.plan.precision,
      label,
    });
  const logits = (net: EvalNet) => net.plan.evalValue(net.predictions);
  const attackBuffers = {
    clean: raw,
    adv,
    x: source.plan.x,
    batch,
    features,
    mean,
    std,
    bytes,
    storage: source.plan.precision,
  };
  const gather = await gatherFor(kernels, split, dataset, {
    indices: rangeIndices(gpu, "eval indices", 0, count),
    indexCount: count,
    cursor,
    cursorIndex: 0,
    x: raw,
    y: target.plan.labels,
    batch,
    raw: true,
    label: "gather eval batch (raw)",
  });
  const next = await advanceCounters(kernels, cursor, { 0: 1 }, "next eval batch");
  // Made once per ε, shared by the full and the last batch.
  const fgsmSteps = await Promise.all(attacks.fgsm.map((eps) =>
    attackStep(kernels, {
      ...attackBuffers,
      eps,
      step: eps,
      grad: source.plan.inputGrad!,
      fromClean: true,
      label: `FGSM ε=${eps}`,
    })
  ));
  const pgdStarts = await Promise.all(attacks.pgd.map((eps, i) =>
    attackStart(kernels, {
      ...attackBuffers,
      eps,
      seed: attacks.seed,
      stream: ADVERSARIAL_STREAM + i,
      cursor,
      label: `PGD start ε=${eps}`,
    })
  ));
  const pgdSteps = await Promise.all(attacks.pgd.map((eps) =>
    attackStep(kernels, {
      ...attackBuffers,
      eps,
      step: eps * attacks.pgdStepRatio,
      grad: source.plan.inputGrad!,
      fromClean: false,
      label: `PGD step ε=${eps}`,
    })
  ));
  const toTarget = transfer
    ? await view(adv, target, IDENTITY_VIEW, "adversarial → target")
    : undefined;

  /** The phases of one batch of `rows` valid rows. */
  const batchPhases = async (rows: number): Promise<Phase[]> => {
    const targetForward = await target.plan.evalForward(rows);
    const sumsAt = (net: EvalNet, slot: number) =>
      metricSums(kernels, net.plan, sums, rows, false, 2 * slot);
    /** The adversarial batch (in the source's input) evaluated: on the source too, if other. */
    const evaluateAttack = async (slot: number, attackIndex: number): Promise<Dispatch[]> => [
      ...(transfer
        ? [
          ...await source.plan.evalForward(rows),
          ...await sumsAt(source, sourceSlot(attackIndex)),
          toTarget!,
        ]
        : []),
      ...targetForward,
      ...await sumsAt(target, slot),
    ];
    const phases: Phase[] = [dispatchPhase("gather", [gather])];
    if (transfer) {
      phases.push({
        kind: "copy",
        label: "labels → attacking model",
        from: target.plan.labels,
        fromOffset: 0,
        to: source.plan.labels,
        toOffset: 0,
        size: batch * 4,
      });
    }
    const clean: Dispatch[] = [
      await view(raw, target, IDENTITY_VIEW, "clean view"),
      ...targetForward,
      ...await sumsAt(target, 0),
    ];
    if (width !== undefined) {
      const { buffer, storage } = logits(target);
      clean.push(
        await countPredictions(kernels, {
          logits: buffer,
          labels: target.plan.labels,
          counts,
          batch,
          rows,
          width,
          classes,
          scores: scores && { buffer: scores, count, cursor },
          storage,
        }),
      );
    }
    phases.push(dispatchPhase("clean", clean));
    if (views.length > 0) {
      const tta: Dispatch[] = [];
      const { buffer, storage } = logits(target);
      for (const [i, v] of views.entries()) {
        tta.push(
          await view(raw, target, v, `TTA view ${i}`),
          ...targetForward,
          await sumLogits(kernels, {
            logits: buffer,
            sum: ttaSum,
            n: batch * width!,
            accumulate: i > 0,
            storage,
          }),
        );
      }
      tta.push(
        await countPredictions(kernels, {
          logits: ttaSum,
          labels: target.plan.labels,
          counts: ttaCounts,
          batch,
          rows,
          width: width!,
          classes,
        }),
      );
      phases.push(dispatchPhase("test-time augmentation", tta));
    }
    if (attacks.fgsm.length > 0) {
      const fgsm: Dispatch[] = [
        await view(raw, source, IDENTITY_VIEW, "clean view (attacking model)"),
        ...await source.plan.inputGradPass(rows),
      ];
      for (const [i, step] of fgsmSteps.entries()) {
        fgsm.push(step, ...await evaluateAttack(1 + i, i));
      }
      phases.push(dispatchPhase("FGSM", fgsm));
    }
    const gradPass = attacks.pgd.length > 0 ? await source.plan.inputGradPass(rows) : [];
    for (const [i, start] of pgdStarts.entries()) {
      const pgd: Dispatch[] = [start];
      for (let s = 0; s < attacks.pgdSteps; s++) pgd.push(...gradPass, pgdSteps[i]!);
      const slot = 1 + attacks.fgsm.length + i;
      pgd.push(...await evaluateAttack(slot, attacks.fgsm.length + i));
      phases.push(dispatchPhase(`PGD ε=${attacks.pgd[i]}`, pgd));
    }
    phases.push(dispatchPhase("next batch", [next]));
    return phases;
  };

  const fullBatches = Math.floor(count / batch);
  const tailRows = count - fullBatches * batch;
  const full = fullBatches > 0 ? await batchPhases(batch) : [];
  const tail = tailRows > 0 ? await batchPhases(tailRows) : [];
  const refresh = dispatchPhase("refresh f16 weights", [
    ...target.plan.refreshWeights,
    ...(transfer ? source.plan.refreshWeights : []),
  ]);
  const total = fullBatches + (tailRows > 0 ? 1 : 0);

  return async (onBatch) => {
    gpu.write(cursor, new Uint32Array(4));
    for (const b of [sums, counts, ttaCounts]) gpu.write(b, new Uint8Array(b.size));
    // A few batches in flight: the queue stays short and the progress real, while the GPU never
    // waits for the CPU's (~10 ms) notice that a batch is done.
    const inFlight: Promise<unknown>[] = [];
    for (let b = 0; b < total; b++) {
      const encoder = gpu.device.createCommandEncoder({ label: `evaluate batch ${b}` });
      encodeSteps(encoder, [...(b === 0 ? [refresh] : []), ...(b < fullBatches ? full : tail)]);
      gpu.submit([encoder.finish()]);
      inFlight.push(gpu.device.queue.onSubmittedWorkDone());
      if (inFlight.length > IN_FLIGHT) {
        await inFlight.shift();
        onBatch?.(b - IN_FLIGHT + 1, total);
      }
    }
    await Promise.all(inFlight);
    onBatch?.(total, total);
    const s = await gpu.readF32(sums);
    const point = (slot: number) => ({
      loss: s[2 * slot]! / count,
      accuracy: s[2 * slot + 1]! / count,
    });
    const attackPoint = (eps: number, slot: number, index: number): AttackPoint => ({
      eps,
      ...point(slot),
      ...(transfer ? { source_accuracy: point(sourceSlot(index)).accuracy } : {}),
    });
    const confusion = width !== undefined
      ? matrix(await gpu.readU32(counts, k * k + 1), k)
      : undefined;
    let tta: SuiteResult["tta"];
    if (views.length > 0) {
      const m = matrix(await gpu.readU32(ttaCounts, k * k + 1), k);
      const correct = m.reduce((t, row, i) => t + row[i]!, 0);
      tta = { views: views.length, accuracy: correct / count, confusion: m };
    }
    return {
      count,
      clean: point(0),
      confusion,
      scores: scores ? await gpu.readF32(scores, count) : undefined,
      tta,
      fgsm: attacks.fgsm.map((eps, i) => attackPoint(eps, 1 + i, i)),
      pgd: attacks.pgd.map((eps, i) =>
        attackPoint(eps, 1 + attacks.fgsm.length + i, attacks.fgsm.length + i)
      ),
    };
  };
}
