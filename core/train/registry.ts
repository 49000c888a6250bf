/**
 * Plugins by name: models, optimizers, schedules and datasets. Built-ins register at start; a
 * user's `--plugin` module adds more. Lookups of unknown names fail with the known ones.
 *
 * @module
 */

import type { Graph, Tensor } from "../graph/graph.ts";
import { builtinOps, type OpTable } from "../graph/rules.ts";
import type { Phase, StepParts } from "./step.ts";
import type { KeySpec } from "./keys.ts";
import { checkPlugin } from "./plugin_check.ts";
import type { Dispatch, KernelCache } from "../gpu/kernels.ts";
import type { Sampler, SearchSpace } from "../search/mod.ts";

/** A flat configuration: snake_case keys, the flag names. */
export type Config = Record<string, unknown>;

/** What a dataset tells a model. */
export interface DatasetInfo {
  /** Values per sample (e.g. 784 for MNIST). */
  features: number;
  /** Number of classes (labels are 0 … classes − 1). */
  classes: number;
  /** Image layout, when the samples are images: channels × height × width. */
  image?: { channels: number; height: number; width: number };
  /**
   * When the first features are a token's absolute position (the `text` dataset): how many, as
   * base-2^24 words least significant first (1: p; 2: p mod 2^24, ⌊p / 2^24⌋).
   */
  positionWords?: number;
  /**
   * The width of the predictions the run's loss wants from the model (set by the trainer: the
   * classes for cross-entropy and mse, 1 for bce); a model's head uses `info.outputs ??
   * info.classes`.
   */
  outputs?: number;
  /**
   * The labels are the tokens of a text (next-token prediction): evaluation reports the loss as
   * bits per token too.
   */
  tokens?: boolean;
}

/**
 * One split of a dataset: `count` rows of `features` values each — bytes (uint8, uploaded packed
 * 4 per u32 and normalised as byte/255) or float features (f32, uploaded as they are) — and one
 * class id per row (< `classes`).
 */
export interface DatasetSplit {
  /** `count × features` values, row after row. */
  samples: Uint8Array | Float32Array;
  /** One class index per row. */
  labels: Uint8Array | Uint16Array | Uint32Array;
  /** Number of rows. */
  count: number;
}

/** What a dataset plugin loads. */
export interface DatasetSplits {
  /** What the model is told: features, classes, image layout. */
  info: DatasetInfo;
  /** The training split (validation is carved from it by `val_split`). */
  train: DatasetSplit;
  /** The held-out test split. */
  test: DatasetSplit;
  /**
   * Mean and std of byte/255 (uint8 samples) or of the value (f32 samples), for normalisation in
   * the gather kernel: one value for all, one per channel (`info.image.channels`), or one per
   * feature. Mean 0 and std 1 leave the values as they are.
   */
  mean: number[];
  /** Per-channel std, as for `mean`. */
  std: number[];
  /**
   * What the plugin fitted on the training rows (scaling, categories, a vocabulary), as plain
   * JSON: the run saves it beside `config.json` and hands it back to `load` on `--resume`, so the
   * same transform applies to the same files.
   */
  fitted?: unknown;
}

/** What every plugin has: its name, description, config keys (with specs) and recipe. */
export interface PluginBase {
  /** The name users select it by (`--model bottleneck-mlp`). */
  name: string;
  /** One line for `--help`. */
  description: string;
  /** The config keys it owns, with their defaults. */
  defaults: Config;
  /**
   * Types and ranges of its keys (e.g. `{ eps: { min: 0, minExclusive: true } }`); a key without
   * one takes the type of its default and any finite value (core/train/keys.ts).
   */
  keys?: Record<string, Partial<KeySpec>>;
  /**
   * Trainer keys it wants when it is chosen — how it should be trained (e.g. a model that needs
   * `{ epochs: 30, lr: 3e-3 }`, an optimizer that wants its own schedule): above the trainer's
   * defaults, below presets, `--config` and flags; printed at start and recorded in config.json.
   */
  recipe?: Config;
}

/**
 * A model: builds its network once on a graph.
 *
 * @example A two-layer MLP; `--hidden 64` sets its key
 * ```ts
 * import { type ModelPlugin, nn } from "webgpu-trainer";
 * const tiny: ModelPlugin = {
 *   kind: "model",
 *   name: "tiny",
 *   description: "Linear → ReLU → Linear: hidden",
 *   defaults: { hidden: 32 },
 *   build(g, input, config, info) {
 *     const h = nn.linear(g, input, "fc1", { out: Number(config.hidden), activation: "relu" });
 *     return nn.linear(g, h, "head", { out: info.classes });
 *   },
 * };
 * export default tiny;
 * ```
 */
export interface ModelPlugin extends PluginBase {
  /** Selected with `--model`. */
  kind: "model";
  /**
   * Returns the predictions (logits [batch, classes]) computed from `input` [batch, features]; the
   * trainer adds the configured loss on them unless the model added a main loss term itself. A
   * model may add auxiliary terms with `g.addLoss(t, weight)`.
   */
  build(g: Graph, input: Tensor, config: Config, info: DatasetInfo): Tensor;
  /** Config keys set by a shorthand (e.g. `arch: "B_2-Wi_128"` sets depth, width, expansion). */
  expand?(config: Config): Config;
  /**
   * For a model whose weights are computed from its parameters (a hypernetwork): builds only that
   * computation on `g` and returns the computed weights by the target's `state_dict` name, in
   * its shapes. `deno task export` runs it on the checkpoint's parameters and writes them.
   */
  generated?(g: Graph, config: Config, info: DatasetInfo): Record<string, Tensor>;
  /**
   * Its output layer, by parameter-name prefix matched at a dot (`"head"` matches `head.weight`
   * and `head.bias`, not `head2.weight`): what `--finetune` replaces for the new class count and
   * what a linear probe (`--mode linear`) trains. Without it, the head is found by building the
   * model for one more class: the layers whose parameter shapes change.
   */
  head?: readonly string[];
  /**
   * Its input layer, by parameter-name prefix as for {@link head}: what `--finetune` replaces when
   * the new data has another number of features. Without it, found by building the model for
   * other features: the layers whose parameter shapes change.
   */
  inputLayer?: readonly string[];
}

/** A trainable tensor as the optimizer sees it: its row of the segment table, named and shaped. */
export interface OptimizerTensor {
  /** The parameter's `state_dict` name. */
  name: string;
  /** Its shape (rank ≥ 2: a weight matrix; rank 1: a bias or a norm's γ/β). */
  shape: readonly number[];
  /** Its first element in the flat buffers. */
  start: number;
  /** One past its last element. */
  end: number;
  /** Its lr multiplier (`lr_multipliers`, the parameter's own). */
  lrMult: number;
  /** Its weight decay (0 for biases and norm parameters). */
  weightDecay: number;
}

/** What an optimizer's update is made from: flat buffers and GPU-side per-step values. */
export interface OptimizerContext {
  /** Compiles and caches the optimizer's kernels. */
  kernels: KernelCache;
  /** The flat parameters (f32), updated in place. */
  params: GPUBuffer;
  /** The flat gradients (f32), as the backward left them. */
  grads: GPUBuffer;
  /** One flat buffer per state slot, zeroed, in `slots` order. */
  state: GPUBuffer[];
  /** The segment table (start, end, lr multiplier, weight decay) and its length. */
  segments: GPUBuffer;
  /** Rows of `segments`. */
  segmentCount: number;
  /** Elements in the flat buffers. */
  n: number;
  /** The GPU step counters (`[0]` = optimizer steps taken, read by the kernels). */
  counters: GPUBuffer;
  /** The lr of every step, indexed by `counters[0]`. */
  lrTable: GPUBuffer;
  /** The same lrs on the CPU, one per optimizer step of the run (for per-step tables of its own). */
  lrs: Float32Array;
  /** The trainable tensors, in the order of the segment table's rows. */
  tensors: readonly OptimizerTensor[];
  /** The run's seed: the key of an optimizer's random numbers (Philox, `wgsl/philox.wgsl`). */
  seed: number;
  /** `[0]` = Σg² of the raw gradients, computed earlier in the step when clipping is on. */
  gradNorm: GPUBuffer;
  /** Multiplies gradients first (1/K over K micro-batches is already in the loss scale: 1). */
  gradScale: number;
  /** Global-norm clipping threshold; 0 = off. */
  maxGradNorm: number;
  /** Σθ² and Σr² per segment, for LAMB. */
  segmentNorms?: GPUBuffer;
  /**
   * Trainable parameter values: `n` less the padding between tensors (what a top-k over the
   * parameters counts); when absent, `n`.
   */
  parameters?: number;
  /** The optimizer this one wraps (see {@link OptimizerPlugin.wraps}), its update already made. */
  base?: BaseOptimizer;
}

/** A wrapped optimizer as the wrapper sees it: its plugin, its state and its update. */
export interface BaseOptimizer {
  /** The base optimizer (e.g. `adamw` under `sam`). */
  plugin: OptimizerPlugin;
  /** Its state slots' buffers, in its slot order (they come first in the run's state). */
  state: GPUBuffer[];
  /** Its update's dispatches (reading `ctx.grads` and updating `ctx.params`). */
  update: Dispatch[];
}

/**
 * An optimizer: one fused update over the flat buffers per step, made of dispatches that read the
 * step's lr from `ctx.lrTable` at `ctx.counters[0]`. Most are written with `defineOptimizer`,
 * which makes this object from a per-element update; `create` by hand is for updates that are
 * not elementwise (LAMB's per-layer trust ratio), `step` for ones that need more than one
 * forward/backward pass (SAM).
 *
 * @example Plain SGD (no momentum) through `defineOptimizer`
 * ```ts
 * import { defineOptimizer, type OptimizerPlugin } from "webgpu-trainer";
 * const plain: OptimizerPlugin = defineOptimizer({
 *   name: "plain-sgd",
 *   description: "SGD without momentum",
 *   slots: [],
 *   weightDecay: "coupled",
 *   update: "p = p - lr * g;",
 * });
 * export default plain;
 * ```
 */
export interface OptimizerPlugin extends PluginBase {
  /** Selected with `--optimizer`. */
  kind: "optimizer";
  /**
   * Names of its state slots, e.g. `["exp_avg", "exp_avg_sq"]` (`optim.<param>.<slot>`): every
   * slot it may use (see {@link slotsFor}).
   */
  slots: string[];
  /**
   * The slots a run with `config` allocates and checkpoints, when they depend on its keys (SAM's
   * one-pass variant keeps the previous gradient); default all of {@link slots}.
   */
  slotsFor?(config: Config): string[];
  /**
   * The config key (one of its own, with a string default) naming another optimizer it wraps, as
   * SAM's `sam_base` names the optimizer that takes the step at the perturbed gradient: the base's
   * keys and recipe join the run's, its slots come first in the run's state under their own names,
   * and its update reaches `create` and `step` as `ctx.base`. The base must update in one pass
   * (no `step` hook, not a wrapper itself).
   */
  wraps?: string;
  /** The dispatches of one update, in order (a wrapper returns or extends `ctx.base.update`). */
  create(ctx: OptimizerContext, config: Config): Promise<Dispatch[]>;
  /**
   * The whole training step, when the optimizer needs more than one forward/backward pass (SAM:
   * pass → perturb → pass again → restore → update): a list of phases made from `parts` and its
   * own dispatches. Without it the step is clear → pass → [Σg²] → update → step counter
   * (`defaultStep` in core/train/step.ts).
   */
  step?(parts: StepParts, ctx: OptimizerContext, config: Config): Promise<Phase[]>;
}

/**
 * A learning-rate schedule: the lr of every optimizer step, computed once on the CPU into the
 * table the optimizer reads on the GPU.
 *
 * @example Linear decay to zero
 * ```ts
 * import type { SchedulePlugin } from "webgpu-trainer";
 * const linear: SchedulePlugin = {
 *   kind: "schedule",
 *   name: "linear",
 *   description: "lr decays linearly to 0",
 *   defaults: {},
 *   lr: (step, total, _perEpoch, config) => Number(config.lr) * (1 - step / total),
 * };
 * export default linear;
 * ```
 */
export interface SchedulePlugin extends PluginBase {
  /** Selected with `--schedule`. */
  kind: "schedule";
  /**
   * The lr of `step`. The trainer's linear warmup (`warmup_steps`) comes first and the schedule
   * sees the steps after it (step 0 = the first after warmup, `totalSteps` of them), unless it
   * declares `handlesWarmup` and gets every step.
   */
  lr(step: number, totalSteps: number, stepsPerEpoch: number, config: Config): number;
  /** It applies `warmup_steps` itself: the trainer passes it every step unchanged. */
  handlesWarmup?: boolean;
}

/**
 * A dataset: uint8 or f32 samples and labels, uploaded once to the GPU (or streamed when larger
 * than the limit) and normalised and augmented there.
 *
 * @example Random noise in two classes
 * ```ts
 * import type { DatasetPlugin } from "webgpu-trainer";
 * const noise: DatasetPlugin = {
 *   kind: "dataset",
 *   name: "noise",
 *   description: "uniform noise, label = first byte > 127",
 *   defaults: { noise_count: 256 },
 *   load(config) {
 *     const split = (count: number) => {
 *       const samples = Uint8Array.from({ length: count * 8 }, () => Math.floor(Math.random() * 256));
 *       const labels = Uint8Array.from({ length: count }, (_, i) => samples[i * 8]! > 127 ? 1 : 0);
 *       return { samples, labels, count };
 *     };
 *     const n = Number(config.noise_count);
 *     return Promise.resolve({
 *       info: { features: 8, classes: 2 },
 *       train: split(n),
 *       test: split(n / 4),
 *       mean: [0.5],
 *       std: [0.29],
 *     });
 *   },
 * };
 * export default noise;
 * ```
 */
export interface DatasetPlugin extends PluginBase {
  /** Selected with `--dataset`. */
  kind: "dataset";
  /** Its config keys that hold file or directory paths (resolved against the user's directory). */
  paths?: readonly string[];
  /**
   * Loads both splits. `fitted` is what an earlier load of the same run returned as
   * {@link DatasetSplits.fitted} (on `--resume`): apply it instead of fitting again. A file that
   * cannot be read fails naming the file and where in it.
   */
  load(config: Config, fitted?: unknown): Promise<DatasetSplits>;
}

/**
 * A search sampler: proposes each trial's parameters (see `core/search/samplers/sampler.ts`).
 *
 * @example Random search under another name
 * ```ts
 * import { RandomSampler, type SamplerPlugin } from "webgpu-trainer";
 * const dice: SamplerPlugin = {
 *   kind: "sampler",
 *   name: "dice",
 *   description: "random search",
 *   defaults: {},
 *   create: (_space, options) => new RandomSampler(options.seed),
 * };
 * export default dice;
 * ```
 */
export interface SamplerPlugin extends PluginBase {
  /** Selected with `deno task search --sampler`. */
  kind: "sampler";
  /** A sampler for a space; `options.seed` makes it reproducible. */
  create(space: SearchSpace, options: { seed?: number; startupTrials: number }): Sampler;
}

/**
 * A loss: adds the model's main loss term on its predictions (`g.addLoss(t, 1, { main: true,
 * correct })`), built from any ops (the built-in fused ones are `nn.labelLoss`).
 */
export interface LossPlugin extends PluginBase {
  /** Selected with `--loss`. */
  kind: "loss";
  /** Adds the main loss term on `predictions` to the graph. */
  apply(g: Graph, predictions: Tensor, config: Config, info: DatasetInfo): void;
  /** The prediction width it wants for a dataset (default: the classes). */
  outputs?(info: DatasetInfo): number;
}

/** Any plugin. */
export type Plugin =
  | ModelPlugin
  | OptimizerPlugin
  | SchedulePlugin
  | DatasetPlugin
  | SamplerPlugin
  | LossPlugin;

/**
 * Plugins by kind and name, and the op rules a run's graphs use: one per run (or per command),
 * nothing global, so two registries never see each other's plugins or ops.
 */
export class Registry {
  #plugins = new Map<string, Map<string, Plugin>>();
  #origins = new Map<string, string>();
  /** Op rules: the built-ins and those plugin modules bring. */
  readonly ops: OpTable = builtinOps();

  /** What `register` names as a plugin's origin when it is not given (see {@link during}). */
  #origin = "built-in";

  /**
   * Adds a plugin after checking its fields (an error names `origin`, the field and what it must
   * be); a name already taken within its kind is an error naming both origins.
   */
  register(plugin: Plugin, origin: string = this.#origin): void {
    checkPlugin(plugin, origin);
    const byName = this.#plugins.get(plugin.kind) ?? new Map<string, Plugin>();
    const key = `${plugin.kind}\u0000${plugin.name}`;
    if (byName.has(plugin.name)) {
      throw new RangeError(
        `${origin}: ${plugin.kind} "${plugin.name}" is already registered (by ${
          this.#origins.get(key)
        })`,
      );
    }
    byName.set(plugin.name, plugin);
    this.#origins.set(key, origin);
    this.#plugins.set(plugin.kind, byName);
  }

  /** Runs `fn` (a plugin module's `register(registry)`) with `origin` as the default origin. */
  async during(origin: string, fn: () => unknown): Promise<void> {
    const before = this.#origin;
    this.#origin = origin;
    try {
      await fn();
    } finally {
      this.#origin = before;
    }
  }

  /** The plugin of a kind and name; unknown names fail with the known ones. */
  get<K extends Plugin["kind"]>(kind: K, name: string): Extract<Plugin, { kind: K }> {
    const plugin = this.#plugins.get(kind)?.get(name);
    if (!plugin) {
      throw new RangeError(
        `Cannot find ${kind} "${name}": known are ${
          this.names(kind).map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
    return plugin as Extract<Plugin, { kind: K }>;
  }

  /** Where a plugin came from: "built-in", or the `--plugin` module that registered it. */
  origin(kind: Plugin["kind"], name: string): string {
    return this.#origins.get(`${kind}\u0000${name}`) ?? "built-in";
  }

  /** Names of a kind, sorted. */
  names(kind: Plugin["kind"]): string[] {
    return [...(this.#plugins.get(kind)?.keys() ?? [])].sort();
  }

  /** All plugins of a kind. */
  list(kind: Plugin["kind"]): Plugin[] {
    return [...(this.#plugins.get(kind)?.values() ?? [])];
  }
}
