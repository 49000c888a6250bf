/**
 * Fine-tuning and linear probes: which parameters of a model are its head and its input layer —
 * declared by the model plugin (`head`, `inputLayer`), or found by building the model for other
 * data and seeing whose shapes change — which tensors of a source checkpoint a new run loads, and
 * the trainer keys that make the loaded body frozen (`freeze`) or slower (`lr_multipliers`).
 *
 * @module
 */

import { Graph } from "../graph/graph.ts";
import type { Config, DatasetInfo, ModelPlugin, Registry } from "./registry.ts";

/** How a fine-tune trains: the whole model, or the head alone on a frozen body. */
export type FinetuneMode = "finetune" | "linear";

/** A model's head and input layer, as parameter-name prefixes matched at a dot. */
export interface ModelParts {
  head: string[];
  input: string[];
  /** "declared" by the plugin's fields, or "detected" from how parameter shapes follow the data. */
  how: "declared" | "detected";
}

/** Whether `name` lies under `prefix`, matched at a dot: "head" matches "head.w", not "head2.w". */
export function underPrefix(name: string, prefix: string): boolean {
  return name === prefix || name.startsWith(prefix.endsWith(".") ? prefix : `${prefix}.`);
}

/** The parameters (name → shape) a model builds for a config and dataset. */
export function modelParams(
  plugin: ModelPlugin,
  config: Config,
  info: DatasetInfo,
): Map<string, readonly number[]> {
  const g = new Graph(1);
  const input = g.input("x", info.features);
  plugin.build(g, input, config, info);
  return new Map(g.params.map((p) => [p.name, p.shape]));
}

/** The layer a parameter belongs to: its name without the last dotted part ("a.b.weight" → "a.b"). */
function layerOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/** Layers (in declaration order) holding a parameter whose shape differs between two builds. */
function changedLayers(
  a: Map<string, readonly number[]>,
  b: Map<string, readonly number[]>,
): string[] {
  const layers: string[] = [];
  for (const [name, shape] of a) {
    const other = b.get(name);
    if (other && other.join(",") === shape.join(",")) continue;
    const layer = layerOf(name);
    if (!layers.includes(layer)) layers.push(layer);
  }
  return layers;
}

/**
 * Info for the same data with other features: an image twice as wide (channels and rows kept),
 * or twice the features.
 */
function widerInfo(info: DatasetInfo): DatasetInfo {
  const image = info.image;
  return image
    ? { ...info, features: info.features * 2, image: { ...image, width: image.width * 2 } }
    : { ...info, features: info.features * 2 };
}

/**
 * The head and input layer of a model: the plugin's `head` / `inputLayer` when it declares them
 * (each prefix must match a parameter), else the layers whose parameter shapes change when the
 * model is built for one more output, and for twice the features. Fails naming the plugin and
 * the field when a declared prefix matches nothing, or when no head can be found.
 */
export function modelParts(
  plugin: ModelPlugin,
  config: Config,
  info: DatasetInfo,
  origin = "built-in",
): ModelParts {
  const what = `${origin === "built-in" ? "" : `${origin}: `}model "${plugin.name}"`;
  const params = modelParams(plugin, config, info);
  const names = [...params.keys()];
  const check = (field: string, list: readonly string[]) => {
    for (const prefix of list) {
      if (!names.some((n) => underPrefix(n, prefix))) {
        throw new RangeError(
          `${what}: ${field} "${prefix}" matches no parameter (its parameters: ${
            names.join(", ")
          })`,
        );
      }
    }
    return [...list];
  };
  const build = (variant: DatasetInfo, change: string) => {
    try {
      return modelParams(plugin, config, variant);
    } catch (e) {
      throw new RangeError(
        `${what}: cannot find its ${change} by building it for ${
          change === "head" ? `${variant.outputs} outputs` : `${variant.features} features`
        } (${(e as Error).message}); declare it with the plugin field "${
          change === "head" ? "head" : "inputLayer"
        }"`,
        { cause: e },
      );
    }
  };
  const outputs = info.outputs ?? info.classes;
  const head = plugin.head ? check("head", plugin.head) : changedLayers(
    params,
    build({ ...info, classes: info.classes + 1, outputs: outputs + 1 }, "head"),
  );
  if (head.length === 0) {
    throw new RangeError(
      `${what}: no parameter follows the number of outputs, so it has no head to replace; declare it with the plugin field "head"`,
    );
  }
  const input = plugin.inputLayer
    ? check("inputLayer", plugin.inputLayer)
    : changedLayers(params, build(widerInfo(info), "input layer"));
  return {
    head,
    input,
    how: plugin.head && plugin.inputLayer ? "declared" : "detected",
  };
}

/** Which parameters a fine-tune loads from its source and which it initialises afresh. */
export interface FinetunePlan {
  mode: FinetuneMode;
  parts: ModelParts;
  /** Parameters of the head: always initialised afresh (the new task's classes). */
  head: string[];
  /** Parameters of the input layer initialised afresh because the source's shapes differ. */
  input: string[];
  /** Parameters loaded from the source checkpoint: the body (frozen in a linear probe). */
  loaded: string[];
  /** Parameter values in the body. */
  loadedValues: number;
}

/**
 * Plans a fine-tune of the model `config` names onto data `info` from a checkpoint whose tensors
 * have `sourceShapes`: the head is replaced; the input layer is replaced when a shape of it
 * differs from the source's; every other parameter is loaded and must be in the source with the
 * same shape (else an error naming `sourcePath` and the tensor).
 */
export function planFinetune(args: {
  registry: Registry;
  config: Config;
  info: DatasetInfo;
  mode: FinetuneMode;
  sourceShapes: Map<string, readonly number[]>;
  sourcePath: string;
}): FinetunePlan {
  const { registry, config, mode, sourceShapes, sourcePath } = args;
  const name = String(config.model);
  const plugin = registry.get("model", name);
  const loss = registry.get("loss", String(config.loss));
  const info = { ...args.info };
  info.outputs = loss.outputs?.(info) ?? info.classes;
  const parts = modelParts(plugin, config, info, registry.origin("model", name));
  const params = modelParams(plugin, config, info);
  const inHead = (n: string) => parts.head.some((p) => underPrefix(n, p));
  const inInput = (n: string) => !inHead(n) && parts.input.some((p) => underPrefix(n, p));
  const same = (n: string) => sourceShapes.get(n)?.join(",") === params.get(n)!.join(",");
  const inputChanged = [...params.keys()].some((n) => inInput(n) && !same(n));
  const head: string[] = [];
  const input: string[] = [];
  const loaded: string[] = [];
  let loadedValues = 0;
  for (const [n, shape] of params) {
    if (inHead(n)) {
      head.push(n);
      continue;
    }
    if (inInput(n) && inputChanged) {
      input.push(n);
      continue;
    }
    const was = sourceShapes.get(n);
    if (!was) {
      throw new RangeError(
        `${sourcePath}: has no tensor "${n}", which model "${name}" needs; the checkpoint was written by another model`,
      );
    }
    if (!same(n)) {
      throw new RangeError(
        `${sourcePath}: tensor "${n}" is [${was}], model "${name}" needs [${shape}] for this data; only the head (${
          parts.head.join(", ")
        }) and the input layer (${parts.input.join(", ") || "none"}) may change shape`,
      );
    }
    loaded.push(n);
    loadedValues += shape.reduce((a, b) => a * b, 1);
  }
  if (loaded.length === 0) {
    throw new RangeError(
      `${sourcePath}: nothing of it would be loaded: every parameter of model "${name}" is its head (${
        parts.head.join(", ")
      }) or its input layer (${
        parts.input.join(", ")
      }), replaced for this data; train it from scratch instead`,
    );
  }
  return { mode, parts, head, input, loaded, loadedValues };
}

/**
 * Prefixes for the `freeze` and `lr_multipliers` keys (which match names by plain `startsWith`)
 * that select exactly `selected` among `all`: for each name, its shortest dotted prefix that
 * selects no other name ("blocks." for every `blocks.*` parameter), else the name itself.
 */
export function selectingPrefixes(selected: readonly string[], all: readonly string[]): string[] {
  const chosen = new Set(selected);
  const out: string[] = [];
  for (const name of selected) {
    if (out.some((p) => name.startsWith(p))) continue;
    const parts = name.split(".");
    let prefix = name;
    for (let k = 1; k < parts.length; k++) {
      const candidate = parts.slice(0, k).join(".") + ".";
      if (all.every((n) => !n.startsWith(candidate) || chosen.has(n))) {
        prefix = candidate;
        break;
      }
    }
    if (all.some((n) => n.startsWith(prefix) && !chosen.has(n))) {
      throw new RangeError(
        `parameter "${name}" is a prefix of another parameter's name, so it cannot be frozen alone`,
      );
    }
    out.push(prefix);
  }
  return out;
}

/**
 * The trainer keys of a fine-tune: with mode "linear", `freeze` adds the loaded body; with a
 * `bodyLrMult` other than 1, `lr_multipliers` gives the body that multiplier. Returns the keys to
 * set (the rest of the config stays as it is).
 */
export function finetuneKeys(
  config: Config,
  plan: FinetunePlan,
  bodyLrMult: number,
): Config {
  const all = [...plan.head, ...plan.input, ...plan.loaded];
  const body = selectingPrefixes(plan.loaded, all);
  const join = (existing: unknown, more: string[]) =>
    [String(existing ?? "").trim(), ...more].filter((s) => s !== "").join(",");
  const keys: Config = {};
  if (plan.mode === "linear" && body.length > 0) {
    keys.freeze = join(config.freeze, body);
  }
  if (plan.mode === "finetune" && bodyLrMult !== 1 && body.length > 0) {
    keys.lr_multipliers = join(config.lr_multipliers, body.map((p) => `${p}=${bodyLrMult}`));
  }
  return keys;
}
