/**
 * `mlp`: Linear → activation (→ dropout) per hidden width, then a Linear head. With `activation
 * selu` it is a self-normalising network (Klambauer et al. 2017, algorithms.md §6.3): alpha
 * dropout instead of dropout, and LeCun-normal initialisation (`init auto`).
 */

import { dropout, linear, LINEAR_INITS, type LinearInit } from "../../core/graph/nn.ts";
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

/** The `mlp` model plugin; parameters `layers.<i>.weight|bias` and `head.weight|bias`. */
export const mlp: ModelPlugin = {
  kind: "model",
  name: "mlp",
  description:
    "plain MLP: widths (e.g. 512,256), activation, dropout (alpha dropout with selu), init (auto: LeCun-normal with selu)",
  defaults: { widths: "256,256", activation: "relu", dropout: 0, init: "auto" },
  keys: {
    activation: { choices: Object.keys(ACTIVATIONS) },
    dropout: { min: 0, max: 1, maxExclusive: true },
    init: { choices: INIT_CHOICES },
  },
  build(g, input, config: Config, info) {
    let h = input;
    const act = String(config.activation) as Activation;
    const p = Number(config.dropout);
    const init = initFor(config, act === "selu");
    parseWidths(config.widths).forEach((width, i) => {
      h = linear(g, h, `layers.${i}`, { out: width, activation: act, init });
      h = dropout(g, h, p, { alpha: act === "selu" });
    });
    return linear(g, h, "head", { out: info.outputs ?? info.classes, init });
  },
};
