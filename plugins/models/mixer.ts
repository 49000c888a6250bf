/**
 * `mixer`: MLP-Mixer (Tolstikhin et al. 2021; shared/specs/algorithms.md §2) on image patches or
 * on the features of a table row.
 *
 * Tokens: an image [C, H, W] is cut into non-overlapping `patch_size`² patches (T = HW/P²), each
 * flattened in (channel, row, column) order — PyTorch's `Conv2d(C, width, P, stride=P)` weight
 * order — and projected by one Linear(C·P² → width) `stem.proj`. A table row of F features becomes
 * T = ⌈F/`token_group`⌉ tokens of `token_group` features (zero-padded at the end), each with its
 * own Linear(group → width): a per-feature tokenizer, `stem.weight` [T, group, width] and
 * `stem.bias` [T, width], because a table's columns, unlike patches, each mean something else.
 *
 * Then `depth` blocks of two pre-LN residual MLPs with GELU, as timm's `MixerBlock` (names follow
 * its `state_dict`): token mixing on the transposed [B, width, T] view, `blocks.<l>.norm1` and
 * `blocks.<l>.mlp_tokens.fc1|fc2` (T → ⌈`token_expansion`·T⌉ → T), then channel mixing,
 * `blocks.<l>.norm2` and `blocks.<l>.mlp_channels.fc1|fc2` (width → ⌈`channel_expansion`·width⌉ →
 * width); `dropout` after each MLP's activation and output; stochastic depth (`drop_path`) on each
 * branch, rising linearly over the blocks (the token and channel branches of a block share the
 * rate and draw apart). Then `norm`, the mean over tokens and the `head`.
 *
 * Two classes with the run's default loss (cross-entropy) and `binary_bce` (default true): one
 * logit with BCE with logits (§9.2), as the numpy Mixer trains on UNSW-NB15; any other `--loss`
 * is the model's as configured.
 */

import {
  add,
  dropout,
  dropPath,
  dropPathRates,
  labelLoss,
  layerNorm,
  linear,
  matmul,
  mean,
  pad,
  reshape,
  transpose,
} from "../../core/graph/nn.ts";
import type { Graph, Tensor } from "../../core/graph/graph.ts";
import type { Config, DatasetInfo, ModelPlugin } from "../../core/train/registry.ts";

/** The patch sizes that cut an image of `height` × `width` evenly. */
function divisors(height: number, width: number): number[] {
  const out: number[] = [];
  for (let p = 1; p <= Math.min(height, width); p++) {
    if (height % p === 0 && width % p === 0) out.push(p);
  }
  return out;
}

/** Image patches [B, T, C·P²] (channel, row, column order) from [B, C·H·W]. */
function patches(g: Graph, x: Tensor, image: NonNullable<DatasetInfo["image"]>, p: number) {
  const { channels: c, height: h, width: w } = image;
  if (h % p !== 0 || w % p !== 0) {
    throw new RangeError(
      `mixer: patch_size ${p} does not cut the ${h}×${w} images evenly; use one of ${
        divisors(h, w).join(", ")
      }`,
    );
  }
  const [gh, gw] = [h / p, w / p];
  // [B, C, gh, P, gw, P] → [B, C, gh, gw, P, P]
  let t = transpose(g, reshape(g, x, [g.batch, c, gh, p, gw, p]), 3, 4);
  // → [B, gh·gw, C, P·P] (a unit channel axis needs no move)
  t = reshape(g, t, [g.batch, c, gh * gw, p * p]);
  if (c > 1) t = transpose(g, t, 1, 2);
  return reshape(g, t, [g.batch, gh * gw, c * p * p]);
}

/** Per-token embedding of a table row [B, F] → [B, T, width], T = ⌈F/group⌉. */
function featureTokens(g: Graph, x: Tensor, group: number, width: number): Tensor {
  const features = x.shape[1]!;
  const tokens = Math.ceil(features / group);
  const grouped = reshape(g, pad(g, x, tokens * group), [g.batch, tokens, group]);
  // One Linear(group → width) per token: a batched matmul over the token axis.
  const weight = g.param("stem.weight", [tokens, group, width], {
    kind: "uniform",
    bound: 1 / Math.sqrt(group),
  });
  const bias = g.param("stem.bias", [tokens, width], {
    kind: "uniform",
    bound: 1 / Math.sqrt(group),
  }, { decay: false });
  const embedded = matmul(g, transpose(g, grouped, 0, 1), weight); // [T, B, width]
  return add(g, transpose(g, embedded, 0, 1), bias);
}

/** An MLP in → ⌈factor·in⌉ → in over the last axis, GELU, dropout after each layer. */
function mlpBranch(g: Graph, x: Tensor, name: string, factor: number, p: number): Tensor {
  const n = x.shape[x.shape.length - 1]!;
  const hidden = Math.max(1, Math.ceil(factor * n));
  const a = dropout(g, linear(g, x, `${name}.fc1`, { out: hidden, activation: "gelu" }), p);
  return dropout(g, linear(g, a, `${name}.fc2`, { out: n }), p);
}

/** Whether the run trains one logit with BCE instead of its configured loss. */
function usesBce(config: Config, info: DatasetInfo): boolean {
  const loss = String(config.loss ?? "cross-entropy");
  return info.classes === 2 && config.binary_bce !== false && loss === "cross-entropy";
}

function positiveInt(config: Config, key: string): number {
  const v = Number(config[key]);
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`mixer: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The `mixer` model plugin. */
export const mixer: ModelPlugin = {
  kind: "model",
  name: "mixer",
  description:
    "MLP-Mixer: patch_size (images) or token_group (tables), width, depth, token_expansion, channel_expansion, dropout, drop_path, binary_bce",
  defaults: {
    patch_size: 7,
    token_group: 1,
    width: 32,
    depth: 2,
    token_expansion: 2,
    channel_expansion: 4,
    dropout: 0,
    drop_path: 0,
    binary_bce: true,
  },
  keys: {
    patch_size: { type: "int", min: 1 },
    token_group: { type: "int", min: 1 },
    width: { type: "int", min: 1 },
    depth: { type: "int", min: 1 },
    token_expansion: { min: 0, minExclusive: true },
    channel_expansion: { min: 0, minExclusive: true },
    dropout: { min: 0, max: 1, maxExclusive: true },
    drop_path: { min: 0, max: 1, maxExclusive: true },
  },
  // MNIST at patch 7 (16 tokens), width 32, 2 blocks: small enough for llvmpipe (README).
  recipe: { epochs: 3, lr: 3e-3, batch_size: 128, weight_decay: 0.05 },
  build(g, input, config, info) {
    const width = positiveInt(config, "width");
    const depth = positiveInt(config, "depth");
    const p = Number(config.dropout ?? 0);
    const rates = dropPathRates(Number(config.drop_path ?? 0), depth);
    const tokenFactor = Number(config.token_expansion);
    const channelFactor = Number(config.channel_expansion);
    let h = info.image
      ? linear(g, patches(g, input, info.image, positiveInt(config, "patch_size")), "stem.proj", {
        out: width,
      })
      : featureTokens(g, input, positiveInt(config, "token_group"), width);
    for (let l = 0; l < depth; l++) {
      const b = `blocks.${l}`;
      // Token mixing: the MLP runs along the token axis of the [B, width, T] view.
      const t = transpose(g, layerNorm(g, h, `${b}.norm1`), 1, 2);
      const mixed = transpose(g, mlpBranch(g, t, `${b}.mlp_tokens`, tokenFactor, p), 1, 2);
      h = add(g, h, dropPath(g, mixed, rates[l]!));
      const c = mlpBranch(g, layerNorm(g, h, `${b}.norm2`), `${b}.mlp_channels`, channelFactor, p);
      h = add(g, h, dropPath(g, c, rates[l]!));
    }
    const pooled = mean(g, layerNorm(g, h, "norm"), 1);
    if (!usesBce(config, info)) {
      return linear(g, pooled, "head", { out: info.outputs ?? info.classes });
    }
    const logit = linear(g, pooled, "head", { out: 1 });
    const { loss, correct } = labelLoss(g, "bce", logit);
    g.addLoss(loss, 1, { main: true, name: "bce", correct });
    return logit;
  },
};
