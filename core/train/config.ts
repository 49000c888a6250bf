/**
 * One flat run configuration: snake_case keys that are the flag names (`--batch-size` ↔
 * `batch_size`). The trainer owns some keys; each selected plugin owns its own. Layers (defaults,
 * preset, `--config` file, flags) merge in order, and a key nobody owns is an error listing the
 * known ones.
 *
 * @module
 */

import type { Config, Plugin, Registry } from "./registry.ts";
import { checkValue, closestNames, flagOf, inferSpec, type KeySpec } from "./keys.ts";
import { baseOptimizer } from "./wrapped_optimizer.ts";

/** A trainer key: its spec, and whether `--resume` may change it. */
export interface TrainKeySpec extends KeySpec {
  /** Free keys may change on `--resume` (recorded in config.json); the rest fix the run. */
  resume?: "free";
}

const plugin = (help: string): TrainKeySpec => ({ type: "string", default: "", help });
const int = (
  def: number,
  min: number,
  help: string,
  extra: Partial<KeySpec> = {},
): TrainKeySpec => ({
  type: "int",
  default: def,
  min,
  help,
  ...extra,
});
const num = (def: number, help: string, extra: Partial<KeySpec>): TrainKeySpec => ({
  type: "number",
  default: def,
  help,
  ...extra,
});

/** The trainer's own keys: type, default, range, help, and what `--resume` may change. */
export const TRAIN_SCHEMA: Record<string, TrainKeySpec> = {
  model: { ...plugin("model plugin"), default: "bottleneck-mlp" },
  dataset: { ...plugin("dataset plugin"), default: "mnist" },
  optimizer: { ...plugin("optimizer plugin"), default: "adamw" },
  schedule: { ...plugin("learning-rate schedule plugin"), default: "cosine", resume: "free" },
  loss: {
    ...plugin("loss plugin: the model's main loss term (cross-entropy, bce, mse)"),
    default: "cross-entropy",
  },
  preset: plugin("a named recipe (see --help); flags still override it"),
  epochs: int(3, 1, "passes over the training set", { resume: "free" } as Partial<KeySpec>),
  batch_size: int(128, 1, "samples per micro-batch"),
  lr: num(
    1e-3,
    "peak learning rate",
    { min: 0, minExclusive: true, resume: "free" } as Partial<KeySpec>,
  ),
  weight_decay: num(0.01, "weight decay (not applied to biases and norm parameters)", { min: 0 }),
  lr_multipliers: plugin(
    'lr multiplier per parameter group: "prefix=mult,..." (e.g. "blocks=0.1")',
  ),
  freeze: plugin(
    'parameters to freeze, by name prefix: "prefix,..." (no gradient, optimizer state or backward work)',
  ),
  warmup_steps: int(0, 0, "linear warmup steps", { resume: "free" } as Partial<KeySpec>),
  label_smoothing: num(0, "label smoothing ε of the cross-entropy", { min: 0, max: 1 }),
  mixup: num(0, "mixup Beta(α, α); 0 = off", { min: 0 }),
  precision: {
    type: "string",
    default: "f32",
    choices: ["f32", "f16"],
    help:
      'how activations and weights are stored: "f32", or "f16" (needs shader-f16; master weights, gradients and sums stay f32)',
  },
  grad_accum: int(1, 1, "micro-batches accumulated per optimizer step"),
  max_grad_norm: num(0, "global-norm gradient clipping; 0 = off", { min: 0 }),
  seed: int(0, 0, "seed of initialisation, shuffling and dropout"),
  train_samples: int(0, 0, "train on the first N training samples; 0 = all"),
  val_split: num(
    0,
    "fraction of the training set held out for validation (seeded, stratified by label)",
    { min: 0, max: 0.9 },
  ),
  data_chunk_mb: num(
    0,
    "stream data larger than this many MiB in chunks of it; 0 = over the adapter's binding limit",
    { min: 0, resume: "free" } as Partial<KeySpec>,
  ),
  steps_per_submit: int(0, 0, "steps encoded per GPU submission; 0 = automatic", {
    resume: "free",
  } as Partial<KeySpec>),
  log_every: int(
    50,
    1,
    "optimizer steps between metric readbacks",
    { resume: "free" } as Partial<KeySpec>,
  ),
  checkpoint_every: int(
    0,
    0,
    "optimizer steps between mid-epoch checkpoints; 0 = epoch ends only",
    {
      resume: "free",
    } as Partial<KeySpec>,
  ),
  keep_best: {
    type: "boolean",
    default: false,
    help: "keep the checkpoint with the best validation metric as best.safetensors",
    resume: "free",
  },
  early_stop: int(
    0,
    0,
    "stop after N evaluations without improvement of the validation metric; 0 = off",
    {
      resume: "free",
    } as Partial<KeySpec>,
  ),
  ema: plugin(
    'power-function EMAs of the weights by σ_rel (EDM2), e.g. "0.05,0.10"; each is evaluated beside the plain weights',
  ),
  eval_weights: {
    type: "string",
    default: "plain",
    help: 'the weights the run\'s test/val metrics report: "plain" or an EMA of --ema ("ema0.05")',
    resume: "free",
  },
  out: plugin("run directory (default runs/<time>)"),
};

/** The trainer's own keys with their defaults. */
export const TRAIN_DEFAULTS: Config = Object.fromEntries(
  Object.entries(TRAIN_SCHEMA).map(([k, s]) => [k, s.default]),
);

/** Short help for the trainer's keys (plugins describe theirs). */
export const TRAIN_HELP: Record<string, string> = Object.fromEntries(
  Object.entries(TRAIN_SCHEMA).map(([k, s]) => [k, s.help ?? ""]),
);

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

/** The plugin kinds a config selects, by the key that names each. */
export const SELECTING_KEYS = [
  ["model", "model"],
  ["optimizer", "optimizer"],
  ["schedule", "schedule"],
  ["dataset", "dataset"],
  ["loss", "loss"],
] as const;

/** A key a configuration may hold: who owns it, its spec, and whether `--resume` may change it. */
export interface KnownKey {
  /** "trainer", or e.g. `optimizer "adam"`. */
  owner: string;
  spec: KeySpec;
  resume?: "free";
}

/** The specs of a plugin's keys: its `keys`, with types inferred from `defaults` elsewhere. */
export function pluginKeySpecs(p: Plugin): Record<string, KeySpec> {
  const out: Record<string, KeySpec> = {};
  for (const [k, d] of Object.entries(p.defaults)) {
    out[k] = { ...inferSpec(d), ...(p.keys?.[k] ?? {}), default: d };
  }
  return out;
}

/**
 * The keys a configuration may hold, given the plugins it selects. A plugin key that reuses a
 * trainer key's name is an error naming both (it would silently change the run).
 */
export function knownKeys(registry: Registry, config: Config): Map<string, KnownKey> {
  const keys = new Map<string, KnownKey>();
  for (const [k, spec] of Object.entries(TRAIN_SCHEMA)) {
    keys.set(k, { owner: "trainer", spec, ...(spec.resume ? { resume: spec.resume } : {}) });
  }
  for (const [key, kind] of SELECTING_KEYS) {
    const selected = selectedPlugins(registry, config, key, kind);
    for (const { plugin: p, owner } of selected) {
      for (const [k, spec] of Object.entries(pluginKeySpecs(p))) {
        if (k in TRAIN_SCHEMA) {
          throw new RangeError(
            `${
              registry.origin(kind, p.name)
            }: ${owner} declares the key "${k}", which is the trainer's own (${
              TRAIN_SCHEMA[k]!.help
            }); rename it (a plugin's keys are its own), or set trainer keys in a recipe`,
          );
        }
        // A wrapper and its base must not both own a key: one would silently set the other's.
        const taken = keys.get(k);
        if (taken && selected.length > 1 && selected.some((q) => q.owner === taken.owner)) {
          throw new RangeError(
            `${owner} and ${taken.owner} both declare the key "${k}"; they cannot be used together`,
          );
        }
        // A schedule's keys may change on resume like the schedule itself.
        keys.set(k, { owner, spec, ...(kind === "schedule" ? { resume: "free" as const } : {}) });
      }
    }
  }
  return keys;
}

/**
 * The plugin a selecting key names, and for an optimizer that wraps another (SAM's `sam_base`)
 * that base too, each with how errors name it.
 */
export function selectedPlugins(
  registry: Registry,
  config: Config,
  key: string,
  kind: Plugin["kind"],
): { plugin: Plugin; owner: string }[] {
  const p = registry.get(kind, String(config[key] ?? TRAIN_DEFAULTS[key]));
  const out = [{ plugin: p as Plugin, owner: `${kind} "${p.name}"` }];
  if (p.kind === "optimizer" && p.wraps) {
    const base = baseOptimizer(registry, config, p);
    if (base) {
      out.push({ plugin: base, owner: `optimizer "${base.name}" (${p.wraps} of "${p.name}")` });
    }
  }
  return out;
}

/**
 * The recipes of the plugins a config selects — the trainer keys each wants when chosen — in the
 * order they apply (later wins): model, dataset, loss, optimizer, schedule.
 */
export function pluginRecipes(
  registry: Registry,
  config: Config,
): { source: string; values: Config }[] {
  const out: { source: string; values: Config }[] = [];
  for (const kind of ["model", "dataset", "loss", "optimizer", "schedule"] as const) {
    // A wrapped optimizer's recipe applies below its wrapper's.
    for (const { plugin: p, owner } of selectedPlugins(registry, config, kind, kind).reverse()) {
      if (p.recipe && Object.keys(p.recipe).length > 0) {
        out.push({ source: `recipe of ${owner}`, values: p.recipe });
      }
    }
  }
  return out;
}

/** How a layer names one of its keys in errors: `--lr` for flags, else `SOURCE: key "lr"`. */
export function keySource(source: string, key: string): string {
  return source === "flags" ? flagOf(key) : `${source}: key "${key}"`;
}

/**
 * The error for a key nobody selected owns: the closest known keys first, then who owns it if
 * an unselected plugin does, then every known key.
 */
export function unknownKeyError(
  registry: Registry,
  known: Map<string, KnownKey>,
  source: string,
  key: string,
): RangeError {
  const what = source === "flags"
    ? `unknown flag ${flagOf(key)}`
    : `${source}: unknown key "${key}"`;
  const near = closestNames(key, known.keys());
  const show = (k: string) => (source === "flags" ? flagOf(k) : `"${k}"`);
  const first = near.length > 0 ? `${what}; did you mean ${near.map(show).join(" or ")}?` : what;
  const owners: string[] = [];
  for (const kind of ["model", "optimizer", "schedule", "dataset", "loss", "sampler"] as const) {
    for (const p of registry.list(kind)) {
      if (key in p.defaults) owners.push(`${kind} "${p.name}"`);
    }
  }
  const owned = owners.length > 0
    ? `\n${show(key)} is a key of ${owners.join(", ")}, which this run does not select`
    : "";
  return new RangeError(
    `${first}${owned}\nknown keys: ${[...known.keys()].sort().join(", ")} (deno task train --help)`,
  );
}

/**
 * Merges layers over the defaults (trainer, preset, then the selected plugins'), checks that
 * every key is known and every value is of its type and range (converting a flag's text), and
 * returns the typed configuration. `source` names each layer in errors ("flags", "--config
 * run.json", ...).
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
  // The chosen plugins' recipes sit below the preset and the layers; a recipe may choose the
  // schedule, whose own recipe then joins (two rounds settle it).
  let recipes = pluginRecipes(registry, merged);
  for (let round = 0; round < 2; round++) {
    const choice: Config = { ...TRAIN_DEFAULTS };
    for (const r of recipes) Object.assign(choice, r.values);
    Object.assign(choice, preset ? PRESETS[preset] : {});
    for (const layer of layers) Object.assign(choice, layer.values);
    merged = choice;
    recipes = pluginRecipes(registry, merged);
  }
  const pluginDefaults: Config = {};
  for (const [key, kind] of SELECTING_KEYS) {
    for (const { plugin } of selectedPlugins(registry, merged, key, kind).reverse()) {
      Object.assign(pluginDefaults, plugin.defaults);
    }
  }
  const known = knownKeys(registry, merged);
  // A model's shorthand (arch) expands within its own layer, so a later layer's explicit key
  // (a flag, a search trial's width) still wins over the preset's arch.
  const model = registry.get("model", String(merged.model));
  const expand = (values: Config) => (model.expand ? model.expand(values) : values);
  const sources = new Map<string, string>();
  const all = [
    ...recipes,
    ...(preset ? [{ source: `preset ${preset}`, values: PRESETS[preset]! }] : []),
    ...layers,
  ];
  let resolved: Config = { ...TRAIN_DEFAULTS, ...pluginDefaults };
  for (const layer of all) {
    for (const key of Object.keys(layer.values)) {
      if (!known.has(key)) throw unknownKeyError(registry, known, layer.source, key);
    }
    const values = expand(layer.values);
    for (const key of Object.keys(values)) sources.set(key, layer.source);
    resolved = { ...resolved, ...values };
  }
  for (const [key, value] of Object.entries(resolved)) {
    const k = known.get(key);
    if (!k) continue;
    const source = sources.get(key);
    resolved[key] = checkValue(
      k.spec,
      value,
      source ? keySource(source, key) : `${k.owner}'s default for "${key}"`,
    );
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
