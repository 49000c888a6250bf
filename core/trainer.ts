/**
 * The training loop over a static plan. One optimizer step is one compute pass — gather →
 * forward → loss → backward (× grad_accum micro-batches) → [gradient norm] → fused optimizer →
 * counters — after a clear of the flat gradient buffer; several steps go into one command buffer
 * and submission. Nothing is read back inside a step: metrics go through {@link MetricRing}.
 * Only the CLI prints; the trainer reports through {@link TrainEvents}.
 *
 * @module
 */

import { join } from "node:path";
import { seededRandom } from "./random.ts";
import type { Gpu } from "./device.ts";
import { type Dispatch, encode, type KernelCache } from "./kernels.ts";
import { Graph } from "./graph.ts";
import { ModelPlan } from "./plan.ts";
import type { Config, Registry } from "./registry.ts";
import { intKey, numKey, parseLrMultipliers } from "./config.ts";
import {
  advanceCounters,
  COUNTER_COUNT,
  createCounters,
  EPOCH_MICRO_STEP,
  GLOBAL_MICRO_STEP,
  OPTIMIZER_STEP,
} from "./counters.ts";
import { epochPermutation, gatherFor, rangeIndices, uploadSplit } from "./data.ts";
import { segmentReduce } from "./ops/reduce.ts";
import { segmentTable } from "./ops/optimizer.ts";
import { mixup, mixupLambdas } from "./ops/mixup.ts";
import { MetricRing, type MetricWindow } from "./metrics.ts";
import { loadCheckpoint, type RunPosition, saveCheckpoint } from "./checkpoint.ts";

/** λ of every micro-step's mixup, drawn once from the run's seed (so a resume mixes the same). */
export function mixupTable(micros: number, alpha: number, seed: number): Float32Array {
  return mixupLambdas(micros, alpha, seededRandom(seed ^ 0x6d697875));
}

/** What the trainer tells its caller. */
export interface TrainEvents {
  start?(info: StartInfo): void;
  window?(
    w: MetricWindow & { lr: number; samplesPerSec: number; etaSeconds: number; totalSteps: number },
  ): void;
  /** Awaited: an epoch handler may decide to stop the run (e.g. a pruner) through the signal. */
  epoch?(record: EpochRecord): void | Promise<void>;
  checkpoint?(path: string, position: RunPosition): void;
}

/** Printed once at start. */
export interface StartInfo {
  adapter: string;
  fallback: boolean;
  parameters: number;
  memory: Record<string, number>;
  stepsPerEpoch: number;
  totalSteps: number;
  trainSamples: number;
  valSamples: number;
  testSamples: number;
  resumedAt?: RunPosition;
}

/** Metrics at the end of an epoch. */
export interface EpochRecord {
  epoch: number;
  step: number;
  train_loss: number | null;
  train_accuracy: number | null;
  val_loss: number | null;
  val_accuracy: number | null;
  test_loss: number;
  test_accuracy: number;
  samples_per_sec: number;
  seconds: number;
}

/** How a run ended. */
export interface TrainResult {
  status: "completed" | "interrupted";
  test_accuracy: number;
  test_loss: number;
  val_accuracy: number | null;
  val_loss: number | null;
  samples_per_sec: number;
  steps: number;
  seconds: number;
  adapter: string;
  fallback_adapter: boolean;
  out_dir: string;
}

/** Raised when the loss turns NaN or infinite; the last good checkpoint is kept. */
export class DivergenceError extends Error {
  override name = "DivergenceError";
}

/** What {@link train} needs. */
export interface TrainOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  config: Config;
  outDir: string;
  events?: TrainEvents;
  /** Stops after the current submission, writing a checkpoint. */
  signal?: AbortSignal;
  /** Continue from this checkpoint file. */
  resumeFrom?: string;
}

/** Trains as configured; returns the final metrics. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const { gpu, kernels, registry, config, outDir } = options;
  const events = options.events ?? {};
  const batch = intKey(config, "batch_size");
  const accum = intKey(config, "grad_accum");
  const epochs = intKey(config, "epochs");
  const seed = intKey(config, "seed", 0);
  const maxGradNorm = numKey(config, "max_grad_norm", 0);
  const weightDecay = numKey(config, "weight_decay", 0);
  const labelSmoothing = numKey(config, "label_smoothing", 0, 1);
  const valSplit = numKey(config, "val_split", 0, 0.9);
  const logEvery = intKey(config, "log_every");
  const checkpointEvery = intKey(config, "checkpoint_every", 0);
  const mixupAlpha = numKey(config, "mixup", 0);
  const precision = String(config.precision ?? "f32");
  if (precision !== "f32" && precision !== "f16") {
    throw new RangeError(`precision must be "f32" or "f16", got "${precision}"`);
  }

  // Data.
  const dataset = await registry.get("dataset", String(config.dataset)).load(config);
  const features = dataset.info.features;
  const trainSamples = intKey(config, "train_samples", 0);
  const available = trainSamples > 0
    ? Math.min(trainSamples, dataset.train.count)
    : dataset.train.count;
  const valCount = Math.round(available * valSplit);
  const fitCount = available - valCount;
  const stepsPerEpoch = Math.floor(fitCount / (batch * accum));
  if (stepsPerEpoch < 1) {
    throw new RangeError(
      `batch_size ${batch} × grad_accum ${accum} exceeds the ${fitCount} training samples`,
    );
  }
  const totalSteps = stepsPerEpoch * epochs;
  const trainGpu = uploadSplit(
    gpu,
    "train",
    dataset.train.samples,
    dataset.train.labels,
    features,
    available,
  );
  const testGpu = uploadSplit(
    gpu,
    "test",
    dataset.test.samples,
    dataset.test.labels,
    features,
    dataset.test.count,
  );

  // Model and plan.
  const graph = new Graph(batch);
  const input = graph.input("x", features);
  const logits = registry.get("model", String(config.model)).build(
    graph,
    input,
    config,
    dataset.info,
  );
  const counters = createCounters(gpu);
  const mixTargets = mixupAlpha > 0
    ? {
      labels2: gpu.storage("mixup partner labels", batch * 4),
      lambda: gpu.storage("mixup λ", 16),
    }
    : undefined;
  const plan = await ModelPlan.build({
    gpu,
    kernels,
    graph,
    input,
    logits,
    counters,
    randomCounter: GLOBAL_MICRO_STEP,
    seed,
    labelSmoothing,
    mixup: mixTargets,
    gradScale: 1 / (batch * accum),
    precision,
  });
  const layout = plan.layout;

  // Optimizer over the flat buffers.
  const optimizer = registry.get("optimizer", String(config.optimizer));
  const schedule = registry.get("schedule", String(config.schedule));
  const state = optimizer.slots.map((slot) => gpu.storage(`optimizer ${slot}`, layout.total * 4));
  const groups = parseLrMultipliers(config.lr_multipliers);
  const segments = segmentTable(
    gpu,
    layout.segments.map((s) => ({
      start: s.offset,
      end: s.offset + s.size,
      // The longest matching prefix wins; a parameter's own multiplier applies on top.
      lrMult: s.param.lrMult *
        (groups.filter(([prefix]) => s.param.name.startsWith(prefix)).sort((a, b) =>
          b[0].length - a[0].length
        )[0]?.[1] ?? 1),
      weightDecay: s.param.decay ? weightDecay : 0,
    })),
  );
  const lrs = Float32Array.from(
    { length: totalSteps },
    (_, s) => schedule.lr(s, totalSteps, stepsPerEpoch, config),
  );
  const lrTable = gpu.storage("lr table", lrs);
  const gradNorm = gpu.storage("gradient Σg²", 16);
  const optimizerDispatches = await optimizer.create({
    kernels,
    params: plan.params,
    grads: plan.grads,
    state,
    segments,
    segmentCount: layout.segments.length,
    n: layout.total,
    counters,
    lrTable,
    gradNorm,
    gradScale: 1,
    maxGradNorm,
  }, config);

  // Metric accumulators: [Σloss, Σcorrect].
  const trainAcc = gpu.storage("train metrics Σ", 16);
  const evalAcc = gpu.storage("eval metrics Σ", 16);
  const sums = async (acc: GPUBuffer) => [
    ...await segmentReduce(kernels, {
      x: plan.lossRows,
      offsets: [0, batch],
      out: acc,
      outOffset: 0,
      accumulate: true,
      label: "Σ loss",
    }),
    ...await segmentReduce(kernels, {
      x: plan.correctRows,
      offsets: [0, batch],
      out: acc,
      outOffset: 1,
      accumulate: true,
      label: "Σ correct",
    }),
  ];

  // The step.
  const epochIndices = gpu.storage("epoch permutation", Math.max(1, fitCount) * 4);
  const trainGather = await gatherFor(kernels, trainGpu, dataset, {
    indices: epochIndices,
    indexCount: fitCount,
    cursor: counters,
    cursorIndex: EPOCH_MICRO_STEP,
    x: plan.x,
    y: plan.labels,
    batch,
    storage: plan.precision,
    label: "gather train batch",
  });
  const mixing: Dispatch[] = [];
  if (mixTargets) {
    const micros = totalSteps * accum;
    const lambdas = mixupTable(micros, mixupAlpha, seed);
    mixing.push(
      await mixup(kernels, {
        x: plan.x,
        labels: plan.labels,
        labels2: mixTargets.labels2,
        lambdas: gpu.storage("mixup λ table", lambdas),
        tableLength: micros,
        counters,
        counterIndex: GLOBAL_MICRO_STEP,
        lambdaOut: mixTargets.lambda,
        batch,
        features,
        storage: plan.precision,
      }),
    );
  }
  const micro: Dispatch[] = [
    trainGather,
    ...mixing,
    ...plan.trainForward,
    plan.trainLoss,
    ...plan.backward,
    ...await sums(trainAcc),
    await advanceCounters(
      kernels,
      counters,
      { [EPOCH_MICRO_STEP]: 1, [GLOBAL_MICRO_STEP]: 1 },
      "next micro-batch",
    ),
  ];
  const update: Dispatch[] = [
    ...(maxGradNorm > 0
      ? await segmentReduce(kernels, {
        x: plan.grads,
        offsets: [0, layout.total],
        out: gradNorm,
        square: true,
        label: "Σg²",
      })
      : []),
    ...optimizerDispatches,
    await advanceCounters(kernels, counters, { [OPTIMIZER_STEP]: 1 }, "next optimizer step"),
  ];
  const encodeSteps = (encoder: GPUCommandEncoder, steps: number) => {
    for (let s = 0; s < steps; s++) {
      encoder.clearBuffer(plan.grads);
      const pass = encoder.beginComputePass({ label: "training step" });
      encode(pass, plan.refreshWeights);
      for (let k = 0; k < accum; k++) encode(pass, micro);
      encode(pass, update);
      pass.end();
    }
  };

  // Evaluation over a split, every sample exactly once (the last batch masked).
  const evalCursor = gpu.storage("eval cursor", 16);
  const makeEval = async (name: string, split: typeof trainGpu, first: number, count: number) => {
    if (count === 0) return undefined;
    const indices = rangeIndices(gpu, `${name} indices`, first, count);
    const gather = await gatherFor(kernels, split, dataset, {
      indices,
      indexCount: count,
      cursor: evalCursor,
      cursorIndex: 0,
      x: plan.x,
      y: plan.labels,
      batch,
      storage: plan.precision,
      label: `gather ${name} batch`,
    });
    const next = await advanceCounters(kernels, evalCursor, { 0: 1 }, `next ${name} batch`);
    const batches = Math.ceil(count / batch);
    const tail = count - (batches - 1) * batch;
    const full = [
      gather,
      ...plan.evalForward,
      await plan.evalLoss(batch),
      ...await sums(evalAcc),
      next,
    ];
    const last = [
      gather,
      ...plan.evalForward,
      await plan.evalLoss(tail),
      ...await sums(evalAcc),
      next,
    ];
    return async () => {
      gpu.write(evalCursor, new Uint32Array(4));
      gpu.write(evalAcc, new Float32Array(4));
      const encoder = gpu.device.createCommandEncoder({ label: `evaluate ${name}` });
      const pass = encoder.beginComputePass({ label: `evaluate ${name}` });
      encode(pass, plan.refreshWeights);
      for (let b = 0; b < batches - 1; b++) encode(pass, full);
      encode(pass, last);
      pass.end();
      gpu.submit([encoder.finish()]);
      const [loss, correct] = await gpu.readF32(evalAcc, 2);
      return { loss: loss! / count, accuracy: correct! / count };
    };
  };
  const evalVal = await makeEval("validation", trainGpu, fitCount, valCount);
  const evalTest = (await makeEval("test", testGpu, 0, dataset.test.count))!;

  // Initial state, or the checkpoint's.
  let position: RunPosition = {
    epoch: 0,
    stepInEpoch: 0,
    step: 0,
    counters: Array(COUNTER_COUNT).fill(0),
  };
  if (options.resumeFrom) {
    const ck = await loadCheckpoint(options.resumeFrom, layout, optimizer.slots);
    gpu.write(plan.params, ck.params);
    ck.state.forEach((s, i) => gpu.write(state[i]!, s));
    position = {
      epoch: ck.epoch,
      stepInEpoch: ck.stepInEpoch,
      step: ck.step,
      counters: ck.counters,
    };
    gpu.write(counters, Uint32Array.from(ck.counters));
  } else {
    gpu.write(plan.params, layout.initialValues(seededRandom(seed)));
  }

  const memory = {
    params: plan.memory().params,
    grads: plan.memory().grads,
    optimizer: state.reduce((n, b) => n + b.size, 0),
    activations: plan.memory().activations,
    data: trainGpu.samples.size + trainGpu.labels.size + testGpu.samples.size + testGpu.labels.size,
  };
  events.start?.({
    adapter: gpu.report.description,
    fallback: gpu.report.fallback,
    parameters: graph.parameterCount,
    memory,
    stepsPerEpoch,
    totalSteps,
    trainSamples: fitCount,
    valSamples: valCount,
    testSamples: dataset.test.count,
    resumedAt: options.resumeFrom ? position : undefined,
  });

  await Deno.mkdir(outDir, { recursive: true });
  const checkpointPath = join(outDir, "model.safetensors");
  const writeCheckpoint = async (pos: RunPosition) => {
    const params = await gpu.readF32(plan.params);
    const stateValues = await Promise.all(state.map((b) => gpu.readF32(b)));
    const countersNow = Array.from(await gpu.readU32(counters, COUNTER_COUNT));
    const at = { ...pos, counters: countersNow };
    await saveCheckpoint(checkpointPath, layout, {
      ...at,
      params,
      state: stateValues,
      slots: optimizer.slots,
      config,
    });
    events.checkpoint?.(checkpointPath, at);
  };

  // Steps per submission: enough to amortise a submission on small models.
  const stepsPerSubmit = intKey(config, "steps_per_submit", 0) ||
    Math.max(1, Math.min(16, Math.floor(2e8 / Math.max(1, graph.parameterCount * batch * accum))));
  let diverged: string | undefined;
  let trainSeconds = 0;
  let trainedSamples = 0;
  let lastWindow: MetricWindow | undefined;
  let evalSeconds = 0;
  const ring = new MetricRing(gpu, 3, 16, (w) => {
    if (!Number.isFinite(w.loss)) {
      diverged ??= `the training loss became ${w.loss} by optimizer step ${w.step}`;
    }
    lastWindow = w;
    // Samples trained in this process over training time (evaluation excluded).
    const elapsed = (performance.now() - loopStart) / 1000 - evalSeconds;
    const rate = ((w.step - position.step) * batch * accum) / Math.max(1e-9, elapsed);
    events.window?.({
      ...w,
      lr: lrs[Math.min(w.step, totalSteps) - 1] ?? 0,
      samplesPerSec: rate,
      etaSeconds: ((totalSteps - w.step) * batch * accum) / Math.max(1e-9, rate),
      totalSteps,
    });
  });
  /** Validation and test metrics of the weights as they are, as an epoch record. */
  const evaluate = async (
    epoch: number,
    atStep: number,
    window: MetricWindow | undefined,
  ): Promise<EpochRecord> => {
    const evalStart = performance.now();
    const val = evalVal ? await evalVal() : undefined;
    const test = await evalTest();
    evalSeconds += (performance.now() - evalStart) / 1000;
    return {
      epoch,
      step: atStep,
      train_loss: window?.loss ?? null,
      train_accuracy: window?.accuracy ?? null,
      val_loss: val?.loss ?? null,
      val_accuracy: val?.accuracy ?? null,
      test_loss: test.loss,
      test_accuracy: test.accuracy,
      samples_per_sec: trainedSamples / Math.max(1e-9, trainSeconds),
      seconds: (performance.now() - started) / 1000,
    };
  };
  let epochStart = performance.now();
  const loopStart = performance.now();
  let interrupted = false;
  let last: EpochRecord | undefined;
  let step = position.step;
  for (let epoch = position.epoch; epoch < epochs && !interrupted; epoch++) {
    // Stopped between epochs: the epoch-end checkpoint is already written.
    if (options.signal?.aborted && epoch > position.epoch) {
      interrupted = true;
      break;
    }
    const firstStep = epoch === position.epoch ? position.stepInEpoch : 0;
    gpu.write(epochIndices, epochPermutation(fitCount, seed, epoch, seededRandom));
    // The epoch's data cursor restarts (queue writes are ordered with the submissions).
    if (firstStep === 0) gpu.write(counters, new Uint32Array([0]), EPOCH_MICRO_STEP * 4);
    epochStart = performance.now();
    let windowStart = step;
    let s = firstStep;
    while (s < stepsPerEpoch) {
      const untilLog = logEvery - ((s - firstStep) % logEvery);
      const untilCheckpoint = checkpointEvery > 0
        ? checkpointEvery - (step % checkpointEvery)
        : Infinity;
      const n = Math.min(stepsPerSubmit, stepsPerEpoch - s, untilLog, untilCheckpoint);
      const readback = n === untilLog || s + n === stepsPerEpoch;
      const staging = readback ? await ring.acquire() : undefined;
      const encoder = gpu.device.createCommandEncoder({ label: `steps ${step + 1}..${step + n}` });
      encodeSteps(encoder, n);
      if (staging) {
        encoder.copyBufferToBuffer(trainAcc, 0, staging, 0, 16);
        encoder.clearBuffer(trainAcc);
      }
      gpu.submit([encoder.finish()]);
      s += n;
      step += n;
      if (staging) {
        ring.commit({ step, epoch, samples: (step - windowStart) * batch * accum });
        windowStart = step;
      }
      if (diverged) break;
      if (checkpointEvery > 0 && step % checkpointEvery === 0 && s < stepsPerEpoch) {
        await ring.drain();
        if (diverged) break;
        await writeCheckpoint({ epoch, stepInEpoch: s, step, counters: [] });
      }
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    await ring.drain();
    trainSeconds += (performance.now() - epochStart) / 1000;
    trainedSamples += (s - firstStep) * batch * accum;
    if (diverged) {
      throw new DivergenceError(
        `${diverged}; stopped there. The last good checkpoint (if any) is kept at ${checkpointPath}`,
      );
    }
    if (interrupted) {
      await writeCheckpoint({ epoch, stepInEpoch: s, step, counters: [] });
      break;
    }
    last = await evaluate(epoch + 1, step, lastWindow);
    await events.epoch?.(last);
    await writeCheckpoint({ epoch: epoch + 1, stepInEpoch: 0, step, counters: [] });
  }
  ring.dispose();
  // Interrupted before any epoch ended: the result still evaluates the weights as they are.
  last ??= await evaluate(position.epoch, step, undefined);
  plan.dispose();
  return {
    status: interrupted ? "interrupted" : "completed",
    test_accuracy: last.test_accuracy,
    test_loss: last.test_loss,
    val_accuracy: last.val_accuracy,
    val_loss: last.val_loss,
    samples_per_sec: last.samples_per_sec,
    steps: step,
    seconds: (performance.now() - started) / 1000,
    adapter: gpu.report.description,
    fallback_adapter: gpu.report.fallback,
    out_dir: outDir,
  };
}
