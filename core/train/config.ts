/**
 * One flat run configuration: snake_case keys that are the flag names (`--batch-size` ↔
 * `batch_size`). The trainer owns some keys; each selected plugin owns its own. Layers (defaults,
 * preset, `--config` file, flags) merge in order, and a key nobody owns is an error listing the
 * known ones.
 *
 * @module
 */

import type { Config, Registry } from "./registry.ts";

/** The trainer's own keys with their defaults. */
export const TRAIN_DEFAULTS: Config = {
  model: "bottleneck-mlp",
  dataset: "mnist",
  optimizer: "adamw",
  schedule: "cosine",
  loss: "cross-entropy",
  preset: "",
  epochs: 3,
  batch_size: 128,
  lr: 1e-3,
  weight_decay: 0.01,
  lr_multipliers: "",
  freeze: "",
  warmup_steps: 0,
  label_smoothing: 0,
  mixup: 0,
  precision: "f32",
  grad_accum: 1,
  max_grad_norm: 0,
  seed: 0,
  train_samples: 0,
  val_split: 0,
  data_chunk_mb: 0,
  steps_per_submit: 0,
  log_every: 50,
  checkpoint_every: 0,
  out: "",
};

/** Short help for the trainer's keys (plugins describe theirs). */
export const TRAIN_HELP: Record<string, string> = {
  model: "model plugin",
  dataset: "dataset plugin",
  optimizer: "optimizer plugin",
  schedule: "learning-rate schedule plugin",
  loss: "loss plugin: the model's main loss term (cross-entropy, bce, mse)",
  preset: "a named recipe (see --help); flags still override it",
  epochs: "passes over the training set",
  batch_size: "samples per micro-batch",
  lr: "peak learning rate",
  weight_decay: "weight decay (not applied to biases and norm parameters)",
  lr_multipliers: 'lr multiplier per parameter group: "prefix=mult,..." (e.g. "blocks=0.1")',
  freeze:
    'parameters to freeze, by name prefix: "prefix,..." (no gradient, optimizer state or backward work)',
  warmup_steps: "linear warmup steps",
  label_smoothing: "label smoothing ε of the cross-entropy",
  mixup: "mixup Beta(α, α); 0 = off",
  precision:
    'how activations and weights are stored: "f32", or "f16" (needs shader-f16; master weights, gradients and sums stay f32)',
  grad_accum: "micro-batches accumulated per optimizer step",
  max_grad_norm: "global-norm gradient clipping; 0 = off",
  seed: "seed of initialisation, shuffling and dropout",
  train_samples: "train on the first N training samples; 0 = all",
  val_split: "fraction of the training set held out for validation (seeded, stratified by label)",
  data_chunk_mb:
    "stream data larger than this many MiB in chunks of it; 0 = over the adapter's binding limit",
  steps_per_submit: "steps encoded per GPU submission; 0 = automatic",
  log_every: "optimizer steps between metric readbacks",
  checkpoint_every: "optimizer steps between mid-epoch checkpoints; 0 = epoch ends only",
  out: "run directory (default runs/<time>)",
};

/** Named recipes. */
export const PRESETS: Record<string, Config> = {
  /** Scaling MLPs' pretraining recipe (algorithms.md §1.3): LION 5e-5, smoothing 0.3, mixup 0.8. */
  "scaling-mlps": {
    optimizer: "lion",
    lr: 5e-5,
    weight_decay: 0,
    label_smoothing: 0.3,
    mixup: 0.8,
    schedule: "constant",
    batch_size: 4096,
  },
  /**
   * The MNIST default on a software adapter: ~3 minutes on 2 CPU cores with the direct matmul
   * (98.2% test accuracy; B_2-Wi_64 reached 97.7% in 1.5 minutes, BENCHMARKS.md).
   */
  "mnist-cpu": {
    model: "bottleneck-mlp",
    arch: "B_2-Wi_128",
    optimizer: "adamw",
    lr: 1e-3,
    batch_size: 128,
    epochs: 4,
  },
  /** The MNIST default on a GPU: a larger BottleneckMLP. */
  "mnist-gpu": {
    model: "bottleneck-mlp",
    arch: "B_4-Wi_512",
    optimizer: "adamw",
    lr: 1e-3,
    batch_size: 256,
    epochs: 10,
    label_smoothing: 0.1,
  },
};

/** Snake-case key of a flag name: `batch-size` → `batch_size`. */
export function keyOf(flag: string): string {
  return flag.replace(/^--/, "").replaceAll("-", "_");
}

/** The keys a configuration may hold, given the plugins it selects, with the owner of each. */
export function knownKeys(registry: Registry, config: Config): Map<string, string> {
  const keys = new Map<string, string>();
  for (const k of Object.keys(TRAIN_DEFAULTS)) keys.set(k, "trainer");
  const kinds = [
    ["model", "model"],
    ["optimizer", "optimizer"],
    ["schedule", "schedule"],
    ["dataset", "dataset"],
    ["loss", "loss"],
  ] as const;
  for (const [key, kind] of kinds) {
    const plugin = registry.get(kind, String(config[key]));
    for (const k of Object.keys(plugin.defaults)) keys.set(k, `${kind} "${plugin.name}"`);
  }
  return keys;
}

/**
 * Merges layers over the defaults (trainer, preset, then the selected plugins') and checks every
 * key. `source` names each layer in errors (e.g. "--config run.json", "flags").
 */
export function resolveConfig(
  registry: Registry,
  layers: { source: string; values: Config }[],
): Config {
  // The preset and plugin names come from the layers, so find them first.
  let config: Config = { ...TRAIN_DEFAULTS };
  for (const layer of layers) config = { ...config, ...layer.values };
  const preset = String(config.preset ?? "");
  if (preset && !PRESETS[preset]) {
    throw new RangeError(
      `Cannot find preset "${preset}": known are ${
        Object.keys(PRESETS).map((p) => `"${p}"`).join(", ")
      }`,
    );
  }
  let merged: Config = { ...TRAIN_DEFAULTS, ...(preset ? PRESETS[preset] : {}) };
  for (const layer of layers) merged = { ...merged, ...layer.values };
  const pluginDefaults: Config = {};
  for (
    const [key, kind] of [
      ["model", "model"],
      ["optimizer", "optimizer"],
      ["schedule", "schedule"],
      ["dataset", "dataset"],
      ["loss", "loss"],
    ] as const
  ) {
    Object.assign(pluginDefaults, registry.get(kind, String(merged[key])).defaults);
  }
  // A model's shorthand (arch) expands within its own layer, so a later layer's explicit key
  // (a flag, a search trial's width) still wins over the preset's arch.
  const model = registry.get("model", String(merged.model));
  const expand = (values: Config) => (model.expand ? model.expand(values) : values);
  let resolved: Config = {
    ...TRAIN_DEFAULTS,
    ...pluginDefaults,
    ...(preset ? expand(PRESETS[preset]!) : {}),
  };
  for (const layer of layers) resolved = { ...resolved, ...expand(layer.values) };
  const known = knownKeys(registry, resolved);
  for (const layer of layers) {
    for (const key of Object.keys(layer.values)) {
      if (!known.has(key)) {
        throw new RangeError(
          `${layer.source}: unknown key "${key}"; known are ${[...known.keys()].sort().join(", ")}`,
        );
      }
    }
  }
  return resolved;
}

/** Parses `lr_multipliers` ("prefix=mult,prefix=mult") into [prefix, multiplier] pairs. */
export function parseLrMultipliers(value: unknown): [string, number][] {
  const text = String(value ?? "").trim();
  if (text === "") return [];
  return text.split(",").map((part) => {
    const [prefix, mult] = part.split("=");
    const m = Number(mult);
    if (!prefix || mult === undefined || !Number.isFinite(m) || m < 0) {
      throw new RangeError(
        `lr_multipliers: "${part}" is not prefix=multiplier with a multiplier ≥ 0`,
      );
    }
    return [prefix.trim(), m];
  });
}

/** Parses `freeze` ("prefix,prefix") into a predicate on parameter names. */
export function parseFreeze(value: unknown): (name: string) => boolean {
  const prefixes = String(value ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
  return (name) => prefixes.some((p) => name.startsWith(p));
}

/** Reads a positive integer key, naming it on failure. */
export function intKey(config: Config, key: string, min = 1): number {
  const v = Number(config[key]);
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${key} must be an integer ≥ ${min}, got ${JSON.stringify(config[key])}`);
  }
  return v;
}

/** Reads a finite number key, naming it on failure. */
export function numKey(config: Config, key: string, min = -Infinity, max = Infinity): number {
  const v = Number(config[key]);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new RangeError(
      `${key} must be a number in [${min}, ${max}], got ${JSON.stringify(config[key])}`,
    );
  }
  return v;
}
