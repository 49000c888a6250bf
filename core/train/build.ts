/**
 * Building a run: the data on the GPU, the model's graph and static plan, the optimizer over the
 * flat buffers (state, segments, lr table) and the step counters — everything made once, in the
 * run's own GPU scope, so {@link BuiltRun.dispose} frees all of it on every path out.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { COUNTER_COUNT, createCounters, GLOBAL_MICRO_STEP } from "../gpu/counters.ts";
import type { GatherAugment } from "../ops/gather.ts";
import { Graph, type Tensor } from "../graph/graph.ts";
import { segmentTable } from "../ops/optimizer.ts";
import { mixupLambdas } from "../ops/mixup.ts";
import { seededRandom } from "../util/random.ts";
import { intKey, numKey, parseFreeze, parseLrMultipliers } from "./config.ts";
import { augmentation } from "./augment.ts";
import { type GpuSplit, type HostSplit, hostSplit, uploadSplit } from "./data.ts";
import { loadDataset, validationSplit } from "./load_data.ts";
import { chunkPolicy, ChunkSlots, EpochFeed, streamSplit } from "./streaming.ts";
import { ModelPlan } from "./plan.ts";
import { buildEma, evalWeightsOf, parseEma, type RunEma } from "./ema.ts";
import type { OpTable } from "../graph/rules.ts";
import { baseOptimizer, runSlots } from "./wrapped_optimizer.ts";
import type {
  Config,
  DatasetInfo,
  DatasetSplits,
  OptimizerContext,
  OptimizerPlugin,
  Registry,
  SchedulePlugin,
} from "./registry.ts";

/** λ of every micro-step's mixup, drawn once from the run's seed (so a resume mixes the same). */
export function mixupTable(micros: number, alpha: number, seed: number): Float32Array {
  return mixupLambdas(micros, alpha, seededRandom(seed ^ 0x6d697875));
}

/** The run's settings, read and checked once from the config. */
export interface RunSettings {
  batch: number;
  accum: number;
  epochs: number;
  seed: number;
  maxGradNorm: number;
  weightDecay: number;
  labelSmoothing: number;
  valSplit: number;
  logEvery: number;
  checkpointEvery: number;
  mixupAlpha: number;
  precision: "f32" | "f16";
  trainSamples: number;
  stepsPerSubmit: number;
  keepBest: boolean;
  earlyStop: number;
  dataChunkMb: number;
  /** σ_rel of each power-function EMA of the weights (`ema`). */
  ema: number[];
  /** The weights the run's metrics report: "plain" or an EMA's name (`eval_weights`). */
  evalWeights: string;
}

/** Reads the trainer's keys, naming the key that is out of range. */
export function runSettings(config: Config): RunSettings {
  if (
    (config.keep_best === true || Number(config.early_stop) > 0) && !(Number(config.val_split) > 0)
  ) {
    throw new RangeError(
      `${
        config.keep_best === true ? "--keep-best" : "--early-stop"
      } watches the validation accuracy: add a validation split (--val-split 0.1)`,
    );
  }
  const precision = String(config.precision ?? "f32");
  if (precision !== "f32" && precision !== "f16") {
    throw new RangeError(`precision must be "f32" or "f16", got "${precision}"`);
  }
  const ema = parseEma(config.ema);
  return {
    ema,
    evalWeights: evalWeightsOf(config.eval_weights, ema),
    batch: intKey(config, "batch_size"),
    accum: intKey(config, "grad_accum"),
    epochs: intKey(config, "epochs"),
    seed: intKey(config, "seed", 0),
    maxGradNorm: numKey(config, "max_grad_norm", 0),
    weightDecay: numKey(config, "weight_decay", 0),
    labelSmoothing: numKey(config, "label_smoothing", 0, 1),
    valSplit: numKey(config, "val_split", 0, 0.9),
    logEvery: intKey(config, "log_every"),
    checkpointEvery: intKey(config, "checkpoint_every", 0),
    mixupAlpha: numKey(config, "mixup", 0),
    precision,
    trainSamples: intKey(config, "train_samples", 0),
    stepsPerSubmit: intKey(config, "steps_per_submit", 0),
    keepBest: config.keep_best === true,
    earlyStop: intKey(config, "early_stop", 0),
    dataChunkMb: numKey(config, "data_chunk_mb", 0),
  };
}

/** The data of a run, resident on the GPU. */
export interface RunData {
  dataset: DatasetSplits;
  train: GpuSplit;
  test: GpuSplit;
  /**
   * Positions of the training split used for fitting (`0 .. fitCount`) and for validation
   * (`fitCount ..`): the rows of a seeded, stratified split, fitting rows first.
   */
  fitCount: number;
  valCount: number;
  stepsPerEpoch: number;
  totalSteps: number;
  /** Training-time augmentation of the gather; undefined when off. */
  augment?: GatherAugment;
  /** The training split's chunk feed, when it streams. */
  trainFeed?: EpochFeed;
  /** Bytes of data on the GPU (samples, chunk slots, labels). */
  bytes: number;
}

/** The optimizer over the plan's flat buffers. */
export interface RunOptimizer {
  plugin: OptimizerPlugin;
  /** The optimizer it wraps (SAM's `sam_base`), when it wraps one. */
  base?: OptimizerPlugin;
  /** The run's state slots: the base's, then the optimizer's own (what checkpoints hold). */
  slots: string[];
  /** One flat buffer per state slot, in `slots` order. */
  state: GPUBuffer[];
  /** The context its update was made from (also what its `step` hook receives). */
  context: OptimizerContext;
  /** The update's dispatches. */
  update: Awaited<ReturnType<OptimizerPlugin["create"]>>;
  /** The lr of every optimizer step (the table on the GPU holds the same). */
  lrs: Float32Array;
}

/** Everything a run made, and the scope that owns it. */
export interface BuiltRun {
  settings: RunSettings;
  config: Config;
  /** The run's own GPU scope and kernel view: every buffer of the run is made through these. */
  gpu: Gpu;
  kernels: KernelCache;
  data: RunData;
  graph: Graph;
  plan: ModelPlan;
  /** The op rules the plan was built with (the registry's). */
  ops: OpTable;
  /**
   * The model's graph (its loss added) built again at another batch size: the same parameters in
   * the same layout, for a plan over the run's own buffers (per-sample gradients).
   */
  modelGraph(batch: number): Promise<Graph>;
  counters: GPUBuffer;
  optimizer: RunOptimizer;
  /** The power-function EMAs of the weights, when `ema` lists any. */
  ema?: RunEma;
  /** Mixup's partner labels and λ table, when mixup is on. */
  mixup?: { labels2: GPUBuffer; lambda: GPUBuffer; table: GPUBuffer; micros: number };
  /** Frees every buffer of the run (its scope); safe to call twice. */
  dispose(): void;
}

/**
 * Loads the data (unless `loaded` is given), holds out the validation split and puts both splits
 * on the GPU, resident or streamed; fails naming the settings when no step fits.
 */
export async function buildData(
  gpu: Gpu,
  registry: Registry,
  config: Config,
  s: RunSettings,
  loaded?: DatasetSplits,
): Promise<RunData> {
  const dataset = loaded ?? await loadDataset(registry, config);
  const features = dataset.info.features;
  const { train, test } = dataset;
  const split = validationSplit(config, train.labels, train.count);
  const fitCount = split.keep.length;
  const valCount = split.heldOut.length;
  const stepsPerEpoch = Math.floor(fitCount / (s.batch * s.accum));
  if (stepsPerEpoch < 1) {
    throw new RangeError(
      `batch_size ${s.batch} × grad_accum ${s.accum} exceeds the ${fitCount} training samples`,
    );
  }
  // Fitting rows first, then the held-out ones; in file order without a validation split.
  const rows = valCount > 0 ? Uint32Array.from([...split.keep, ...split.heldOut]) : undefined;
  const hosts: [string, HostSplit][] = [
    ["train", hostSplit(train, features, fitCount + valCount, rows)],
    ["test", hostSplit(test, features)],
  ];
  const policy = chunkPolicy(gpu, s.dataChunkMb);
  const bytesOf = (h: HostSplit) =>
    h.count * h.features * (h.samples instanceof Float32Array ? 4 : 1);
  const streams = hosts.some(([, h]) => bytesOf(h) > policy.limit);
  const slots = streams ? new ChunkSlots(gpu, policy.chunkBytes) : undefined;
  const [trainSplit, testSplit] = hosts.map(([name, h]) =>
    slots && bytesOf(h) > policy.limit
      ? streamSplit(gpu, name, h, slots)
      : uploadSplit(gpu, name, h)
  ) as [GpuSplit, GpuSplit];
  const trainFeed = trainSplit.stream &&
    new EpochFeed(trainSplit.stream, s.batch * s.accum, fitCount, policy.source);
  const splitBytes = (g: GpuSplit) => g.labels.size + (g.stream ? 0 : g.samples.size);
  return {
    dataset,
    train: trainSplit,
    test: testSplit,
    fitCount,
    valCount,
    stepsPerEpoch,
    totalSteps: stepsPerEpoch * s.epochs,
    augment: augmentation(config, dataset.info, s.seed, GLOBAL_MICRO_STEP),
    trainFeed,
    bytes: splitBytes(trainSplit) + splitBytes(testSplit) + 2 * (slots?.bytes ?? 0),
  };
}

/** The lr multiplier of a parameter: its own, times the longest matching `lr_multipliers` prefix. */
function lrMultiplier(name: string, own: number, groups: [string, number][]): number {
  const match = groups.filter(([prefix]) => name.startsWith(prefix))
    .sort((a, b) => b[0].length - a[0].length)[0];
  return own * (match?.[1] ?? 1);
}

/**
 * The lr of every step: linear warmup over `warmup_steps` (from lr/(w+1) to lr), then the
 * schedule on the steps after it — or the schedule alone when it `handlesWarmup`. A non-finite or
 * negative lr is an error naming the schedule and the step.
 */
export function scheduledLrs(
  schedule: SchedulePlugin,
  config: Config,
  totalSteps: number,
  stepsPerEpoch: number,
): Float32Array {
  const warmup = schedule.handlesWarmup ? 0 : intKey(config, "warmup_steps", 0);
  const lr = numKey(config, "lr", 0);
  const after = Math.max(1, totalSteps - warmup);
  return Float32Array.from({ length: totalSteps }, (_, step) => {
    const v = step < warmup
      ? (lr * (step + 1)) / (warmup + 1)
      : schedule.lr(step - warmup, after, stepsPerEpoch, config);
    if (!(Number.isFinite(v) && v >= 0)) {
      throw new RangeError(
        `schedule "${schedule.name}" gives lr ${v} at step ${step}; it must be a finite number ≥ 0`,
      );
    }
    return v;
  });
}

/** The optimizer's state, segment table, lr table and update dispatches. */
export async function buildOptimizer(
  gpu: Gpu,
  kernels: KernelCache,
  registry: Registry,
  config: Config,
  s: RunSettings,
  plan: ModelPlan,
  counters: GPUBuffer,
  data: Pick<RunData, "totalSteps" | "stepsPerEpoch">,
): Promise<RunOptimizer> {
  const layout = plan.layout;
  const plugin = registry.get("optimizer", String(config.optimizer));
  const base = baseOptimizer(registry, config, plugin);
  const slots = runSlots(plugin, base, config);
  const schedule = registry.get("schedule", String(config.schedule));
  // Over the trainable prefix of the layout only: frozen parameters have no state.
  const n = Math.max(layout.trainableTotal, 1);
  const state = [...slots.base, ...slots.own].map((slot) =>
    gpu.storage(`optimizer ${slot}`, n * 4)
  );
  const groups = parseLrMultipliers(config.lr_multipliers);
  if (layout.trainableSegments.length === 0) {
    throw new RangeError(`every parameter is frozen (freeze "${config.freeze}"): nothing to train`);
  }
  const tensors = layout.trainableSegments.map((seg) => ({
    name: seg.param.name,
    shape: seg.param.shape,
    start: seg.offset,
    end: seg.offset + seg.size,
    lrMult: lrMultiplier(seg.param.name, seg.param.lrMult, groups),
    weightDecay: seg.param.decay ? s.weightDecay : 0,
  }));
  const segments = segmentTable(gpu, tensors);
  const lrs = scheduledLrs(schedule, config, data.totalSteps, data.stepsPerEpoch);
  const context: OptimizerContext = {
    kernels,
    params: plan.params,
    grads: plan.grads,
    state,
    segments,
    segmentCount: layout.trainableSegments.length,
    n,
    counters,
    lrTable: gpu.storage("lr table", lrs),
    lrs,
    tensors,
    seed: s.seed,
    gradNorm: gpu.storage("gradient Σg²", 16),
    gradScale: 1,
    maxGradNorm: s.maxGradNorm,
    parameters: layout.trainableSegments.reduce((sum, seg) => sum + seg.size, 0),
  };
  if (base) {
    // The base updates over its own slots; the wrapper sees them and the base's update.
    const baseState = state.slice(0, slots.base.length);
    const update = await base.create({ ...context, state: baseState }, config);
    context.state = state.slice(slots.base.length);
    context.base = { plugin: base, state: baseState, update };
  }
  return {
    plugin,
    base,
    slots: [...slots.base, ...slots.own],
    state,
    context,
    update: await plugin.create(context, config),
    lrs,
  };
}

/** A model's graph with its main loss, as a run builds it (see {@link modelGraph}). */
export interface ModelGraph {
  graph: Graph;
  /** What the model returned: its predictions (logits), the main loss's input. */
  predictions: Tensor;
  /** The dataset info the model was built with (`outputs` set for the loss). */
  info: DatasetInfo;
  /** Runs `f`, naming the plugin module of a plugin model in its errors. */
  named<T>(f: () => Promise<T>): Promise<T>;
}

/**
 * The config's model built on a graph of `batch` rows, with the configured loss added as its main
 * term unless the model added its own: what training, evaluation and attacks plan. A plugin
 * model's failure names the module it came from.
 */
export async function modelGraph(
  registry: Registry,
  config: Config,
  datasetInfo: DatasetInfo,
  batch: number,
): Promise<ModelGraph> {
  const graph = new Graph(batch);
  const input = graph.input("x", datasetInfo.features);
  const modelName = String(config.model);
  const origin = registry.origin("model", modelName);
  const named = <T>(f: () => Promise<T>): Promise<T> =>
    origin === "built-in" ? f() : f().catch((e) => {
      throw new (e instanceof RangeError ? RangeError : Error)(
        `${origin}: model "${modelName}": ${(e as Error).message}`,
        { cause: e },
      );
    });
  const loss = registry.get("loss", String(config.loss));
  const info = { ...datasetInfo };
  info.outputs = loss.outputs?.(info) ?? info.classes;
  const predictions = await named(() =>
    Promise.resolve(registry.get("model", modelName).build(graph, input, config, info))
  );
  if (!graph.mainLoss) loss.apply(graph, predictions, config, info);
  return { graph, predictions, info, named };
}

/** Builds a run in a new scope of `gpu`; on failure everything made so far is freed. */
export async function buildRun(options: {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  config: Config;
  /** The dataset, already loaded (the CLI loads it before writing anything). */
  dataset?: DatasetSplits;
}): Promise<BuiltRun> {
  const { registry, config } = options;
  const settings = runSettings(config);
  const gpu = options.gpu.scope("run");
  const kernels = options.kernels.withGpu(gpu);
  try {
    const data = await buildData(gpu, registry, config, settings, options.dataset);
    const { graph, named } = await modelGraph(registry, config, data.dataset.info, settings.batch);
    // The same graph at another batch size (per-sample gradients plan one over the run's buffers).
    const graphAt = async (rows: number) =>
      (await modelGraph(registry, config, data.dataset.info, rows)).graph;
    const counters = createCounters(gpu);
    const { batch, accum, mixupAlpha, seed } = settings;
    const mixup = mixupAlpha > 0
      ? {
        labels2: gpu.storage("mixup partner labels", batch * 4),
        lambda: gpu.storage("mixup λ", 16),
        table: gpu.storage(
          "mixup λ table",
          mixupTable(data.totalSteps * accum, mixupAlpha, seed),
        ),
        micros: data.totalSteps * accum,
      }
      : undefined;
    const plan = await named(() =>
      ModelPlan.build({
        gpu,
        kernels,
        graph,
        ops: registry.ops,
        counters,
        randomCounter: GLOBAL_MICRO_STEP,
        seed,
        microBatches: accum,
        mixup,
        frozen: parseFreeze(config.freeze),
        precision: settings.precision,
      })
    );
    const optimizer = await buildOptimizer(
      gpu,
      kernels,
      registry,
      config,
      settings,
      plan,
      counters,
      data,
    );
    const ema = await buildEma({
      gpu,
      kernels,
      sigmas: settings.ema,
      params: plan.params,
      n: optimizer.context.n,
      counters,
      totalSteps: data.totalSteps,
    });
    return {
      settings,
      config,
      gpu,
      kernels,
      data,
      graph,
      plan,
      ops: registry.ops,
      modelGraph: graphAt,
      counters,
      optimizer,
      ema,
      mixup,
      dispose: () => gpu.dispose(),
    };
  } catch (e) {
    gpu.dispose();
    throw e;
  }
}

/** Zeroed step counters for a fresh run. */
export function freshCounters(): number[] {
  return Array(COUNTER_COUNT).fill(0);
}
