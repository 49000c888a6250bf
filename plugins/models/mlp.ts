/**
 * `mlp`: Linear → activation (→ dropout) per hidden width, then a Linear head. With `activation
 * selu` it is a self-normalising network (Klambauer et al. 2017, algorithms.md §6.3): alpha
 * dropout instead of dropout, and LeCun-normal initialisation (`init auto`). With `fff_depth` D > 0
 * each hidden layer is a Fast Feedforward layer (algorithms.md §8) of that output width: a tree of
 * depth D over 2^D leaves of `leaf_width` units, then the activation. `fff` is this model with one
 * such hidden layer and its own recipe.
 */

import {
  activation as activationLayer,
  dropout,
  fff as fffLayer,
  linear,
  LINEAR_INITS,
  type LinearInit,
} from "../../core/graph/nn.ts";
import type { Graph, Tensor } from "../../core/graph/graph.ts";
import type { Config, ModelPlugin } from "../../core/train/registry.ts";
import { type Activation, ACTIVATIONS } from "../../core/ops/activation_ids.ts";

/** Reads `widths` as a list of positive integers ("512,256" or [512, 256]). */
export function parseWidths(value: unknown): number[] {
  const list = typeof value === "string"
    ? value.split(",").filter((s) => s.trim() !== "").map(Number)
    : Array.isArray(value)
    ? value.map(Number)
    : typeof value === "number"
    ? [value]
    : [];
  if (list.length === 0 || list.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new RangeError(
      `widths must be positive integers like "512,256", got ${JSON.stringify(value)}`,
    );
  }
  return list;
}

/** The `init` key's choices: "auto" (LeCun-normal for SELU, else Kaiming-uniform) or one of them. */
export const INIT_CHOICES = ["auto", ...LINEAR_INITS] as const;

/** The linear layers' init under `init`: "auto" is LeCun-normal for SELU networks. */
export function initFor(config: Config, selu: boolean): LinearInit {
  const init = String(config.init ?? "auto");
  if (init === "auto") return selu ? "lecun-normal" : "kaiming-uniform";
  return init as LinearInit;
}

/** The Fast Feedforward keys `mlp`, `bottleneck-mlp` and `fff` share, with their defaults. */
export const FFF_DEFAULTS = { fff_depth: 0, leaf_width: 32, region_leak: 0, hardening: 0.1 };

/** The specs of {@link FFF_DEFAULTS}. */
export const FFF_KEYS = {
  fff_depth: { type: "int" as const, min: 0, max: 16 },
  leaf_width: { type: "int" as const, min: 1, max: 1024 },
  region_leak: { min: 0, max: 1, maxExclusive: true },
  hardening: { min: 0 },
};

/**
 * A Fast Feedforward layer `name` of `out` features as the config's keys ask for it (`fff_depth`,
 * `leaf_width`, `region_leak`, `hardening`).
 */
export function fffFor(g: Graph, x: Tensor, name: string, out: number, config: Config): Tensor {
  return fffLayer(g, x, name, {
    out,
    depth: Number(config.fff_depth),
    leafWidth: Number(config.leaf_width),
    leak: Number(config.region_leak ?? 0),
    hardening: Number(config.hardening ?? 0.1),
  });
}

/**
 * The `mlp` model plugin; parameters `layers.<i>.weight|bias` and `head.weight|bias` (with
 * `fff_depth`: `layers.<i>.nodes|fc1|fc2.weight|bias`, see `nn.fff`).
 */
export const mlp: ModelPlugin = {
  kind: "model",
  name: "mlp",
  description:
    "plain MLP: widths (e.g. 512,256), activation, dropout (alpha dropout with selu), init (auto: LeCun-normal with selu); fff_depth > 0 makes each hidden layer a Fast Feedforward tree (leaf_width, region_leak, hardening)",
  defaults: { widths: "256,256", activation: "relu", dropout: 0, init: "auto", ...FFF_DEFAULTS },
  keys: {
    activation: { choices: Object.keys(ACTIVATIONS) },
    dropout: { min: 0, max: 1, maxExclusive: true },
    init: { choices: INIT_CHOICES },
    ...FFF_KEYS,
  },
  build(g, input, config: Config, info) {
    let h = input;
    const act = String(config.activation) as Activation;
    const p = Number(config.dropout);
    const init = initFor(config, act === "selu");
    const tree = Number(config.fff_depth ?? 0) > 0;
    parseWidths(config.widths).forEach((width, i) => {
      h = tree
        ? activationLayer(g, fffFor(g, h, `layers.${i}`, width, config), act)
        : linear(g, h, `layers.${i}`, { out: width, activation: act, init });
      h = dropout(g, h, p, { alpha: act === "selu" });
    });
    return linear(g, h, "head", { out: info.outputs ?? info.classes, init });
  },
  head: ["head"],
  inputLayer: ["layers.0"],
};

/**
 * The `fff` model: `mlp` whose hidden layer is a Fast Feedforward layer (algorithms.md §8) — the
 * soft mixture and the hardening loss in training, one hard path per sample in evaluation — with
 * a recipe that trains it on MNIST to ≥ 95 % test accuracy on the hard path.
 */
export const fffModel: ModelPlugin = {
  ...mlp,
  name: "fff",
  description:
    "mlp whose hidden layer is a Fast Feedforward tree: widths, fff_depth, leaf_width, region_leak, hardening (the entropy loss's weight), activation, dropout",
  defaults: { ...mlp.defaults, widths: "128", fff_depth: 3, leaf_width: 32 },
  keys: { ...mlp.keys, fff_depth: { ...FFF_KEYS.fff_depth, min: 1 } },
  recipe: { optimizer: "adam", lr: 2e-3, weight_decay: 0, epochs: 5, batch_size: 128 },
};
