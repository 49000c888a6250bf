/**
 * `bottleneck-mlp`, as in "Scaling MLPs" (Bachmann et al. 2023; shared/specs/algorithms.md §1):
 * embed Linear d_in → W, then L pre-LN residual blocks h + W2·GELU(W1·LN(h) + b1) + b2 with
 * W1: W → eW and W2: eW → W, then a Linear head W → K, with no final norm. Parameter names follow
 * the reference repository's `state_dict` (gregorbachmann/scaling_mlps `models/networks.py`):
 * `linear_in`, `blocks.<l>.block.0` (W1), `blocks.<l>.block.2` (W2), `layernorms.<l>`, `linear_out`.
 */

import { add, layerNorm, linear } from "../../core/graph/nn.ts";
import type { Config, ModelPlugin } from "../../core/train/registry.ts";

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
  description: "Scaling MLPs' BottleneckMLP: depth, width, expansion (arch B_<depth>-Wi_<width>)",
  defaults: { arch: "", depth: 2, width: 128, expansion: 4 },
  keys: {
    depth: { type: "int", min: 1 },
    width: { type: "int", min: 1 },
    expansion: { type: "int", min: 1 },
  },
  expand(config) {
    // Keys set beside arch in the same layer win over it.
    return config.arch ? { ...parseArch(String(config.arch)), ...config } : config;
  },
  build(g, input, config, info) {
    const depth = positiveInt(config, "depth");
    const width = positiveInt(config, "width");
    const wide = width * positiveInt(config, "expansion");
    let h = linear(g, input, "linear_in", { out: width });
    for (let l = 0; l < depth; l++) {
      const n = layerNorm(g, h, `layernorms.${l}`);
      const a = linear(g, n, `blocks.${l}.block.0`, { out: wide, activation: "gelu" });
      h = add(g, h, linear(g, a, `blocks.${l}.block.2`, { out: width }));
    }
    return linear(g, h, "linear_out", { out: info.outputs ?? info.classes });
  },
  head: ["linear_out"],
  inputLayer: ["linear_in"],
};
