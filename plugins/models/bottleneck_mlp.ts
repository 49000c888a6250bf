/**
 * `bottleneck-mlp`, as in "Scaling MLPs" (Bachmann et al. 2023; shared/specs/algorithms.md §1):
 * embed Linear d_in → W, then L pre-LN residual blocks h + W2·GELU(W1·LN(h) + b1) + b2 with
 * W1: W → eW and W2: eW → W, then a Linear head W → K, with no final norm. Parameter names follow
 * the reference repository's `state_dict` (gregorbachmann/scaling_mlps `models/networks.py`):
 * `linear_in`, `blocks.<l>.block.0` (W1), `blocks.<l>.block.2` (W2), `layernorms.<l>`, `linear_out`.
 *
 * Regularisers: `dropout` after each block's hidden activation; `drop_path` (stochastic depth,
 * §9.7) on each block's branch, rising linearly from 0 at the first block to `drop_path` at the
 * last. `block selu` is the self-normalising block of the AUNN project (§6.2): no LayerNorm, SELU
 * instead of GELU, alpha dropout instead of dropout, the residual kept, LeCun-normal weights
 * (`init auto`).
 */

import { add, dropout, dropPath, dropPathRates, layerNorm, linear } from "../../core/graph/nn.ts";
import type { Config, ModelPlugin } from "../../core/train/registry.ts";
import { INIT_CHOICES, initFor } from "./mlp.ts";

/** The `block` key's choices: the paper's pre-LN GELU block, or a SELU block without a norm. */
export const BLOCKS = ["prenorm-gelu", "selu"] as const;

function positiveInt(config: Config, key: string): number {
  const v = Number(config[key]);
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
  }
  return v;
}

/** Parses `B_<depth>-Wi_<width>[-X_<expansion>]` into config keys. */
export function parseArch(arch: string): { depth: number; width: number; expansion?: number } {
  const m = /^B_(\d+)-Wi_(\d+)(?:-X_(\d+))?$/.exec(arch);
  if (!m) {
    throw new RangeError(`arch must look like "B_12-Wi_1024" or "B_6-Wi_512-X_2", got "${arch}"`);
  }
  return { depth: Number(m[1]), width: Number(m[2]), ...(m[3] ? { expansion: Number(m[3]) } : {}) };
}

/** The `bottleneck-mlp` model plugin. */
export const bottleneckMlp: ModelPlugin = {
  kind: "model",
  name: "bottleneck-mlp",
  description:
    "Scaling MLPs' BottleneckMLP: depth, width, expansion (arch B_<depth>-Wi_<width>), block (prenorm-gelu|selu), dropout, drop_path, init",
  defaults: {
    arch: "",
    depth: 2,
    width: 128,
    expansion: 4,
    block: "prenorm-gelu",
    dropout: 0,
    drop_path: 0,
    init: "auto",
  },
  keys: {
    depth: { type: "int", min: 1 },
    width: { type: "int", min: 1 },
    expansion: { type: "int", min: 1 },
    block: { choices: BLOCKS },
    dropout: { min: 0, max: 1, maxExclusive: true },
    drop_path: { min: 0, max: 1, maxExclusive: true },
    init: { choices: INIT_CHOICES },
  },
  expand(config) {
    // Keys set beside arch in the same layer win over it.
    return config.arch ? { ...parseArch(String(config.arch)), ...config } : config;
  },
  build(g, input, config, info) {
    const depth = positiveInt(config, "depth");
    const width = positiveInt(config, "width");
    const wide = width * positiveInt(config, "expansion");
    const selu = config.block === "selu";
    const init = initFor(config, selu);
    const p = Number(config.dropout ?? 0);
    const rates = dropPathRates(Number(config.drop_path ?? 0), depth);
    let h = linear(g, input, "linear_in", { out: width, init });
    for (let l = 0; l < depth; l++) {
      const n = selu ? h : layerNorm(g, h, `layernorms.${l}`);
      const a = linear(g, n, `blocks.${l}.block.0`, {
        out: wide,
        activation: selu ? "selu" : "gelu",
        init,
      });
      const hidden = dropout(g, a, p, { alpha: selu });
      const branch = linear(g, hidden, `blocks.${l}.block.2`, { out: width, init });
      h = add(g, h, dropPath(g, branch, rates[l]!));
    }
    return linear(g, h, "linear_out", { out: info.outputs ?? info.classes, init });
  },
};
