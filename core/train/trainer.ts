/**
 * The training loop. A run is built once ({@link buildRun}: data, graph, plan, optimizer), its
 * step is data ({@link buildStep}), and the loop only encodes steps, reads metrics from a ring of
 * staging buffers without waiting, evaluates at epoch ends and checkpoints. Everything the run
 * allocated is freed on every way out (done, error, divergence, interruption). Only the CLI
 * prints; the trainer reports through {@link TrainEvents}.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { EPOCH_MICRO_STEP } from "../gpu/counters.ts";
import { MetricRing, type MetricWindow, type WindowMeta } from "../gpu/metrics.ts";
import type { RunPosition } from "../io/checkpoint.ts";
export type { BuiltRun } from "./build.ts";
import { seededRandom } from "../util/random.ts";
import { buildRun, type BuiltRun } from "./build.ts";
import { Checkpointer, DivergenceError } from "./checkpoints.ts";
import { epochPermutation } from "./data.ts";
import { type Evaluation, makeEvaluator } from "./evaluator.ts";
import { buildStep, type TrainStep } from "./recipe.ts";
import type { Config, DatasetSplits, Registry } from "./registry.ts";
import { encodeSteps } from "./step.ts";

export { mixupTable } from "./build.ts";
export { DivergenceError } from "./checkpoints.ts";

/** A readback window as the trainer reports it. */
export type WindowRecord = MetricWindow & {
  lr: number;
  samplesPerSec: number;
  etaSeconds: number;
  totalSteps: number;
};

/** What the trainer tells its caller. */
export interface TrainEvents {
  /** Once, after the run is built and its starting state loaded, before the first step. */
  start?(info: StartInfo): void;
  /** At each metric readback: every `log_every` steps, epoch ends, mid-epoch checkpoints. */
  window?(w: WindowRecord): void;
  /** Awaited: an epoch handler may decide to stop the run (e.g. a pruner) through the signal. */
  epoch?(record: EpochRecord): void | Promise<void>;
  /** After each checkpoint file is written: its path and the position it holds. */
  checkpoint?(path: string, position: RunPosition): void;
}

/** Printed once at start. */
export interface StartInfo {
  /** The adapter's description (`Gpu.report.description`). */
  adapter: string;
  /** True on a software adapter such as llvmpipe. */
  fallback: boolean;
  /** Number of parameter values in the model (`Graph.parameterCount`). */
  parameters: number;
  /** GPU bytes by use: `params`, `grads`, `optimizer`, `activations`, `data` (and `ema`). */
  memory: Record<string, number>;
  /** Optimizer steps per epoch: fitting rows / (`batch_size` × `grad_accum`), rounded down. */
  stepsPerEpoch: number;
  /** Optimizer steps of the whole run (`epochs` × steps per epoch). */
  totalSteps: number;
  /** Training rows used for fitting (the rows in use less the validation rows). */
  trainSamples: number;
  /** Training rows held out for validation (`val_split` of the rows in use); 0 without. */
  valSamples: number;
  /** Rows of the test split. */
  testSamples: number;
  /** Where the run resumed, when it started from a checkpoint. */
  resumedAt?: RunPosition;
}

/** The validation and test metrics of one set of weights (the plain ones, or an EMA). */
export interface WeightsEvaluation {
  /** Mean validation loss; null without validation rows. */
  val_loss: number | null;
  /** Validation accuracy (0..1); null without validation rows. */
  val_accuracy: number | null;
  /** Mean loss on the test split. */
  test_loss: number;
  /** Accuracy (0..1) on the test split. */
  test_accuracy: number;
}

/** Metrics at the end of an epoch. */
export interface EpochRecord {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  step: number;
  /** Mean training loss of the last readback window; null when no window was read. */
  train_loss: number | null;
  /** Training accuracy (0..1) of the last readback window; null when no window was read. */
  train_accuracy: number | null;
  /** Mean validation loss; null without validation rows. */
  val_loss: number | null;
  /** Validation accuracy (0..1); null without validation rows. */
  val_accuracy: number | null;
  /** Mean loss on the test split. */
  test_loss: number;
  /** Accuracy (0..1) on the test split. */
  test_accuracy: number;
  /** Training samples per second in this process, evaluation time excluded. */
  samples_per_sec: number;
  /** Wall-clock seconds since the run was built, evaluation included. */
  seconds: number;
  /** With EMAs (`ema`): the weights the val/test fields above report (`eval_weights`). */
  weights?: string;
  /** With EMAs: every set of weights' metrics, by name ("plain", "ema0.05", …). */
  evaluations?: Record<string, WeightsEvaluation>;
}

/** How a run ended. */
export interface TrainResult {
  /** "early-stopped": `early_stop` evaluations passed without a better validation metric. */
  status: "completed" | "interrupted" | "early-stopped";
  /** Test accuracy (0..1) of the final weights. */
  test_accuracy: number;
  /** Mean test loss of the final weights. */
  test_loss: number;
  /** Validation accuracy (0..1) of the final weights; null without validation rows. */
  val_accuracy: number | null;
  /** Mean validation loss of the final weights; null without validation rows. */
  val_loss: number | null;
  /** Training samples per second in this process, evaluation time excluded. */
  samples_per_sec: number;
  /** Optimizer steps completed. */
  steps: number;
  /** Wall-clock seconds since the run was built, evaluation included. */
  seconds: number;
  /** The adapter's description (`Gpu.report.description`). */
  adapter: string;
  /** True on a software adapter such as llvmpipe. */
  fallback_adapter: boolean;
  /** The run folder ({@link TrainOptions.outDir}). */
  out_dir: string;
  /** With `keep_best`: the best validation accuracy and the epoch it was reached. */
  best?: { val_accuracy: number; epoch: number; path: string };
  /** With EMAs (`ema`): the weights the test/val fields report (`eval_weights`). */
  weights?: string;
  /** With EMAs: the final metrics of every set of weights, by name ("plain", "ema0.05", …). */
  evaluations?: Record<string, WeightsEvaluation>;
}

/** What {@link train} needs. */
export interface TrainOptions {
  /** The device; the run allocates in its own scope of it. */
  gpu: Gpu;
  /** Compiled kernels, shared with other runs on the device. */
  kernels: KernelCache;
  /** The plugins and op rules the config may name. */
  registry: Registry;
  /** The run's flat configuration (snake_case keys). */
  config: Config;
  /** The run folder: checkpoints are written here. */
  outDir: string;
  /** Progress callbacks; none by default. */
  events?: TrainEvents;
  /** Stops after the current submission, writing a checkpoint. */
  signal?: AbortSignal;
  /** Continue from this checkpoint file. */
  resumeFrom?: string;
  /**
   * Called once the run is built and its starting state loaded — the data, the model, the
   * optimizer and the checkpoint are all valid — before anything is written: the caller creates
   * the run's folder and files here, so a run that fails to start leaves nothing behind.
   * @internal (the command line's hook)
   */
  ready?: (run: BuiltRun, start: RunPosition) => Promise<void>;
  /** The dataset, already loaded and checked (else the run loads it). */
  dataset?: DatasetSplits;
}

/** Trains as configured; returns the final metrics. Frees everything it allocated. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  return await trainBuilt(await buildRun(options), options);
}

/** Trains a built run (see {@link buildRun}) to its end, then frees it. */
export async function trainBuilt(run: BuiltRun, options: TrainOptions): Promise<TrainResult> {
  try {
    return await new Loop(run, options).execute();
  } finally {
    run.dispose();
  }
}

/** A finite loss this many times the first window's is a divergence too. */
export const EXPLODING_LOSS_FACTOR = 1e3;

/** Steps per submission: enough to amortise a submission on small models. */
function stepsPerSubmit(run: BuiltRun): number {
  const { settings, graph } = run;
  if (settings.stepsPerSubmit > 0) return settings.stepsPerSubmit;
  const work = graph.parameterCount * settings.batch * settings.accum;
  return Math.max(1, Math.min(16, Math.floor(2e8 / Math.max(1, work))));
}

/** One run's loop state: where it is, what it measured, and its pieces. */
class Loop {
  readonly run: BuiltRun;
  readonly options: TrainOptions;
  readonly events: TrainEvents;
  readonly started = performance.now();
  readonly checkpoints: Checkpointer;
  step!: TrainStep;
  evalVal?: () => Promise<Evaluation>;
  evalTest!: () => Promise<Evaluation>;
  ring!: MetricRing;
  position!: RunPosition;
  diverged?: string;
  trainSeconds = 0;
  trainedSamples = 0;
  evalSeconds = 0;
  loopStart = 0;
  lastWindow?: MetricWindow;
  firstLoss?: number;
  best?: { val_accuracy: number; epoch: number };
  sinceBest = 0;

  constructor(run: BuiltRun, options: TrainOptions) {
    this.run = run;
    this.options = options;
    this.events = options.events ?? {};
    this.checkpoints = new Checkpointer(run, options.outDir, options.events?.checkpoint);
  }

  async execute(): Promise<TrainResult> {
    await this.#prepare();
    await this.options.ready?.(this.run, this.position);
    await Deno.mkdir(this.options.outDir, { recursive: true });
    await this.checkpoints.removeStaleTemporaries();
    const { epochs, earlyStop } = this.run.settings;
    let interrupted = false;
    let stoppedEarly = false;
    let last: EpochRecord | undefined;
    let step = this.position.step;
    this.loopStart = performance.now();
    try {
      for (let epoch = this.position.epoch; epoch < epochs; epoch++) {
        // Stopped between epochs: the epoch-end checkpoint is already written.
        if (this.options.signal?.aborted && epoch > this.position.epoch) {
          interrupted = true;
          break;
        }
        const end = await this.#epoch(epoch, step);
        step = end.step;
        if (this.diverged) {
          throw new DivergenceError(
            `${this.diverged}; stopped there. The last good checkpoint (if any) is kept at ${this.checkpoints.path}`,
          );
        }
        if (end.interrupted) {
          interrupted = true;
          await this.checkpoints.write({ epoch, stepInEpoch: end.stepInEpoch, step });
          break;
        }
        last = await this.#evaluate(epoch + 1, step, this.lastWindow);
        await this.events.epoch?.(last);
        await this.checkpoints.write({ epoch: epoch + 1, stepInEpoch: 0, step });
        if (await this.#keepBest(last) && earlyStop > 0 && this.sinceBest >= earlyStop) {
          stoppedEarly = true;
          break;
        }
      }
    } finally {
      await this.ring.drain().catch(() => {});
    }
    // Interrupted before any epoch ended: the result still evaluates the weights as they are.
    last ??= await this.#evaluate(this.position.epoch, step, undefined);
    const gpu = this.run.gpu;
    return {
      status: interrupted ? "interrupted" : stoppedEarly ? "early-stopped" : "completed",
      test_accuracy: last.test_accuracy,
      test_loss: last.test_loss,
      val_accuracy: last.val_accuracy,
      val_loss: last.val_loss,
      samples_per_sec: last.samples_per_sec,
      steps: step,
      seconds: (performance.now() - this.started) / 1000,
      adapter: gpu.report.description,
      fallback_adapter: gpu.report.fallback,
      out_dir: this.options.outDir,
      ...(this.best ? { best: { ...this.best, path: this.checkpoints.bestPath } } : {}),
      ...(last.evaluations ? { weights: last.weights, evaluations: last.evaluations } : {}),
    };
  }

  /**
   * After an epoch's evaluation: with `keep_best` or `early_stop`, tracks the best validation
   * accuracy (writing best.safetensors when it improves with `keep_best`); returns whether early
   * stopping is in play.
   */
  async #keepBest(record: EpochRecord): Promise<boolean> {
    const { keepBest, earlyStop } = this.run.settings;
    if (!keepBest && earlyStop === 0) return false;
    const v = record.val_accuracy;
    if (v === null) return false;
    if (!this.best || v > this.best.val_accuracy) {
      this.best = { val_accuracy: v, epoch: record.epoch };
      this.sinceBest = 0;
      if (keepBest) {
        await this.checkpoints.write(
          { epoch: record.epoch, stepInEpoch: 0, step: record.step },
          true,
        );
      }
    } else {
      this.sinceBest++;
    }
    return true;
  }

  /** The step, evaluators, metric ring and starting state; then the start event. */
  async #prepare(): Promise<void> {
    const { gpu, kernels, plan, data, settings, graph } = this.run;
    this.step = await buildStep(this.run);
    const evaluator = (name: string, split: typeof data.train, first: number, count: number) =>
      makeEvaluator({
        gpu,
        kernels,
        plan,
        batch: settings.batch,
        dataset: data.dataset,
        split,
        name,
        first,
        count,
      });
    this.evalVal = await evaluator("validation", data.train, data.fitCount, data.valCount);
    this.evalTest = (await evaluator("test", data.test, 0, data.dataset.test.count))!;
    this.position = await this.checkpoints.start(this.options.resumeFrom);
    this.ring = new MetricRing(
      gpu,
      3,
      this.step.metricBytes,
      (meta, sums) => this.#window(meta, sums),
    );
    const memory = {
      params: plan.memory().params,
      grads: plan.memory().grads,
      optimizer: this.run.optimizer.state.reduce((n, b) => n + b.size, 0),
      ...(this.run.ema ? { ema: (this.run.ema.buffers.length + 1) * this.run.ema.n * 4 } : {}),
      activations: plan.memory().activations,
      data: data.bytes,
    };
    this.events.start?.({
      adapter: gpu.report.description,
      fallback: gpu.report.fallback,
      parameters: graph.parameterCount,
      memory,
      stepsPerEpoch: data.stepsPerEpoch,
      totalSteps: data.totalSteps,
      trainSamples: data.fitCount,
      valSamples: data.valCount,
      testSamples: data.dataset.test.count,
      resumedAt: this.options.resumeFrom ? this.position : undefined,
    });
  }

  /** A readback window: the loss of every term, the divergence check and the window event. */
  #window(meta: WindowMeta, sums: Float32Array): void {
    const { plan } = this.run;
    const micro = meta.samples / this.run.settings.batch;
    let loss = 0;
    const terms: Record<string, number> = {};
    plan.terms.forEach((t, i) => {
      const mean = sums[2 + i]! / (t.size * micro);
      terms[t.name] = mean;
      loss += t.weight * mean;
    });
    const w: MetricWindow = {
      ...meta,
      loss,
      accuracy: sums[1]! / meta.samples,
      ...(plan.terms.length > 1 ? { terms } : {}),
    };
    if (!Number.isFinite(w.loss)) {
      this.diverged ??= `the training loss became ${w.loss} by optimizer step ${w.step}`;
    } else if (this.firstLoss === undefined) {
      this.firstLoss = w.loss;
    } else if (w.loss > EXPLODING_LOSS_FACTOR * Math.max(this.firstLoss, 1e-6)) {
      this.diverged ??=
        `the training loss exploded to ${w.loss} by optimizer step ${w.step} (${EXPLODING_LOSS_FACTOR}× the first window's ${this.firstLoss})`;
    }
    this.lastWindow = w;
    const { settings, data, optimizer } = this.run;
    const samplesPerStep = settings.batch * settings.accum;
    // Samples trained in this process over training time (evaluation excluded).
    const elapsed = (performance.now() - this.loopStart) / 1000 - this.evalSeconds;
    const rate = ((w.step - this.position.step) * samplesPerStep) / Math.max(1e-9, elapsed);
    this.events.window?.({
      ...w,
      lr: optimizer.lrs[Math.min(w.step, data.totalSteps) - 1] ?? 0,
      samplesPerSec: rate,
      etaSeconds: ((data.totalSteps - w.step) * samplesPerStep) / Math.max(1e-9, rate),
      totalSteps: data.totalSteps,
    });
  }

  /** One epoch's steps from where the run stands; returns where it stopped. */
  async #epoch(
    epoch: number,
    startStep: number,
  ): Promise<{ step: number; stepInEpoch: number; interrupted: boolean }> {
    const { gpu, data, settings } = this.run;
    const { stepsPerEpoch } = data;
    const firstStep = epoch === this.position.epoch ? this.position.stepInEpoch : 0;
    const order = epochPermutation(data.fitCount, settings.seed, epoch, seededRandom);
    gpu.write(this.step.epochIndices, order);
    // A streamed training split packs its chunks in this order (core/train/streaming.ts).
    data.trainFeed?.beginEpoch(epoch, order);
    // The epoch's data cursor restarts (queue writes are ordered with the submissions).
    if (firstStep === 0) gpu.write(this.run.counters, new Uint32Array([0]), EPOCH_MICRO_STEP * 4);
    const epochStart = performance.now();
    const perSubmit = stepsPerSubmit(this.run);
    let step = startStep;
    let windowStart = step;
    let s = firstStep;
    let interrupted = false;
    while (s < stepsPerEpoch) {
      const untilLog = settings.logEvery - ((s - firstStep) % settings.logEvery);
      const n = Math.min(
        perSubmit,
        stepsPerEpoch - s,
        untilLog,
        this.checkpoints.stepsUntilDue(step),
        data.trainFeed?.stepsLeftInChunk(s) ?? Infinity,
      );
      data.trainFeed?.prepare(s);
      // A checkpoint is written only after every step before it was checked: read back then too.
      const readback = n === untilLog || s + n === stepsPerEpoch ||
        (this.checkpoints.dueAfter(step + n) && s + n < stepsPerEpoch);
      const staging = readback ? await this.ring.acquire() : undefined;
      const encoder = gpu.device.createCommandEncoder({ label: `steps ${step + 1}..${step + n}` });
      encodeSteps(encoder, this.step.phases, n, "training step", { epoch, stepInEpoch: s, step });
      if (staging) {
        encoder.copyBufferToBuffer(this.step.metrics, 0, staging, 0, this.step.metricBytes);
        encoder.clearBuffer(this.step.metrics);
      }
      gpu.submit([encoder.finish()]);
      data.trainFeed?.prefetch(s + n);
      s += n;
      step += n;
      if (staging) {
        this.ring.commit({
          step,
          epoch,
          samples: (step - windowStart) * settings.batch * settings.accum,
        });
        windowStart = step;
      }
      if (this.diverged) break;
      if (this.checkpoints.dueAfter(step) && s < stepsPerEpoch) {
        await this.ring.drain();
        if (this.diverged) break;
        await this.checkpoints.write({ epoch, stepInEpoch: s, step });
      }
      if (this.options.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    await this.ring.drain();
    this.trainSeconds += (performance.now() - epochStart) / 1000;
    this.trainedSamples += (s - firstStep) * settings.batch * settings.accum;
    return { step, stepInEpoch: s, interrupted };
  }

  /** Validation and test metrics of the weights as they are, as an epoch record. */
  async #evaluate(
    epoch: number,
    atStep: number,
    window: MetricWindow | undefined,
  ): Promise<EpochRecord> {
    const evalStart = performance.now();
    const measure = async (): Promise<WeightsEvaluation> => {
      const val = this.evalVal ? await this.evalVal() : undefined;
      const test = await this.evalTest();
      return {
        val_loss: val?.loss ?? null,
        val_accuracy: val?.accuracy ?? null,
        test_loss: test.loss,
        test_accuracy: test.accuracy,
      };
    };
    const { ema, settings } = this.run;
    const evaluations: Record<string, WeightsEvaluation> = { plain: await measure() };
    for (const [k, name] of (ema?.names ?? []).entries()) {
      evaluations[name] = await ema!.withWeights(k, measure);
    }
    this.evalSeconds += (performance.now() - evalStart) / 1000;
    return {
      epoch,
      step: atStep,
      train_loss: window?.loss ?? null,
      train_accuracy: window?.accuracy ?? null,
      ...evaluations[settings.evalWeights]!,
      samples_per_sec: this.trainedSamples / Math.max(1e-9, this.trainSeconds),
      seconds: (performance.now() - this.started) / 1000,
      ...(ema ? { weights: settings.evalWeights, evaluations } : {}),
    };
  }
}
