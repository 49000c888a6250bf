/**
 * Plugins by name: models, optimizers, schedules and datasets. Built-ins register at start; a
 * user's `--plugin` module adds more. Lookups of unknown names fail with the known ones.
 *
 * @module
 */

import type { Graph, Tensor } from "./graph.ts";
import type { Dispatch, KernelCache } from "./kernels.ts";

/** A flat configuration: snake_case keys, the flag names. */
export type Config = Record<string, unknown>;

/** What a dataset tells a model. */
export interface DatasetInfo {
  /** Values per sample (e.g. 784 for MNIST). */
  features: number;
  classes: number;
  /** Image layout, when the samples are images: channels × height × width. */
  image?: { channels: number; height: number; width: number };
}

/** One split of a dataset: uint8 samples of `features` bytes each, and uint8 labels. */
export interface DatasetSplit {
  samples: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** What a dataset plugin loads. */
export interface DatasetSplits {
  info: DatasetInfo;
  train: DatasetSplit;
  test: DatasetSplit;
  /** Per-channel mean and std of pixel/255, for normalisation in the gather kernel. */
  mean: number[];
  std: number[];
}

interface PluginBase {
  /** The name users select it by (`--model bottleneck-mlp`). */
  name: string;
  /** One line for `--help`. */
  description: string;
  /** The config keys it owns, with their defaults. */
  defaults: Config;
}

/** A model: builds its network once on a graph. */
export interface ModelPlugin extends PluginBase {
  kind: "model";
  /** Returns the logits [batch, classes] computed from `input` [batch, features]. */
  build(g: Graph, input: Tensor, config: Config, info: DatasetInfo): Tensor;
  /** Config keys set by a shorthand (e.g. `arch: "B_2-Wi_128"` sets depth, width, expansion). */
  expand?(config: Config): Config;
}

/** What an optimizer's update is made from: flat buffers and GPU-side per-step values. */
export interface OptimizerContext {
  kernels: KernelCache;
  params: GPUBuffer;
  grads: GPUBuffer;
  /** One flat buffer per state slot, zeroed, in `slots` order. */
  state: GPUBuffer[];
  /** The segment table (start, end, lr multiplier, weight decay) and its length. */
  segments: GPUBuffer;
  segmentCount: number;
  /** Elements in the flat buffers. */
  n: number;
  counters: GPUBuffer;
  lrTable: GPUBuffer;
  /** `[0]` = Σg² of the raw gradients, computed earlier in the step when clipping is on. */
  gradNorm: GPUBuffer;
  /** Multiplies gradients first (1/K over K micro-batches is already in the loss scale: 1). */
  gradScale: number;
  /** Global-norm clipping threshold; 0 = off. */
  maxGradNorm: number;
  /** Σθ² and Σr² per segment, for LAMB. */
  segmentNorms?: GPUBuffer;
}

/** An optimizer: one fused update over the flat buffers per step. */
export interface OptimizerPlugin extends PluginBase {
  kind: "optimizer";
  /** Names of its state slots, e.g. `["exp_avg", "exp_avg_sq"]` (`optim.<param>.<slot>`). */
  slots: string[];
  /** The dispatches of one update, in order. */
  create(ctx: OptimizerContext, config: Config): Promise<Dispatch[]>;
}

/** A learning-rate schedule: the lr of every optimizer step, computed once on the CPU. */
export interface SchedulePlugin extends PluginBase {
  kind: "schedule";
  lr(step: number, totalSteps: number, stepsPerEpoch: number, config: Config): number;
}

/** A dataset. */
export interface DatasetPlugin extends PluginBase {
  kind: "dataset";
  load(config: Config): Promise<DatasetSplits>;
}

/** Any plugin. */
export type Plugin = ModelPlugin | OptimizerPlugin | SchedulePlugin | DatasetPlugin;

/** Plugins by kind and name. */
export class Registry {
  #plugins = new Map<string, Map<string, Plugin>>();

  /** Adds a plugin; a name already taken within its kind is an error naming both. */
  register(plugin: Plugin, origin = "built-in"): void {
    const byName = this.#plugins.get(plugin.kind) ?? new Map<string, Plugin>();
    if (byName.has(plugin.name)) {
      throw new RangeError(`${origin}: ${plugin.kind} "${plugin.name}" is already registered`);
    }
    byName.set(plugin.name, plugin);
    this.#plugins.set(plugin.kind, byName);
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

  /** Names of a kind, sorted. */
  names(kind: Plugin["kind"]): string[] {
    return [...(this.#plugins.get(kind)?.keys() ?? [])].sort();
  }

  /** All plugins of a kind. */
  list(kind: Plugin["kind"]): Plugin[] {
    return [...(this.#plugins.get(kind)?.values() ?? [])];
  }
}
