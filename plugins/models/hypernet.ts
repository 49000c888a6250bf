/**
 * `hypernet`: a static hypernetwork (Ha, Dai & Le 2017; algorithms.md §7) that generates every
 * weight of a target network — a small CNN (3×3 convolutions with ReLU and 2×2 max-pooling, then a
 * linear head) or an MLP — so that only the generator's tensors are parameters: the target's
 * weights are activations, and the data loss reaches the generator through them (§7.1).
 *
 * The target's tensors (named like the PyTorch module's `state_dict`: `conv1.weight`
 * [out, in, 3, 3], …, `fc.weight`; for the MLP `layers.<i>.weight`, `head.weight`) are cut into
 * rows of `chunk` values. A generator shared by all rows maps each row's input to its values:
 * - `embedding`: a learned embedding per row, `embeddings` [rows, z_dim] ~ N(0, 1), grouped by
 *   tensor (§7.2: each block of a layer has its own z; the generator is shared);
 * - `index-mlp`: the ±1 binary code of the row's index, least significant bit first (§7.3), so
 *   the generator's MLP is all there is.
 * The generator is `gen_depth` hidden layers of `gen_width` (`gen_activation`) and a linear output
 * of `chunk`, LeCun-normal with zero biases. Each tensor j is multiplied by its own constant
 * s_j = std_j / std_gen, where std_j = 1/√(3·fan_in_j) is PyTorch's default (Kaiming-uniform,
 * a = √5) and std_gen the generator's expected output std at initialisation, propagated through
 * its layers (§7.3 recommendation: the generated weights start at the target's init scale).
 *
 * The CNN's feature maps are channels-last inside (so its convolutions are im2col + the matmul);
 * the last one is transposed to channels-first before the head, so `fc.weight` reads the
 * flattened features in PyTorch's order and the exported weights load into `nn.Module` as they are.
 */

import * as nn from "../../core/graph/nn.ts";
import type { Graph, Tensor } from "../../core/graph/graph.ts";
import type { Config, DatasetInfo, ModelPlugin } from "../../core/train/registry.ts";
import { type Activation, ACTIVATIONS } from "../../core/ops/activation_ids.ts";
import { parseWidths } from "./mlp.ts";

/** The `target` key's choices. */
export const HYPERNET_TARGETS = ["cnn", "mlp"] as const;
/** The `generator` key's choices. */
export const HYPERNET_GENERATORS = ["embedding", "index-mlp"] as const;

/** One tensor of the target network. */
export interface TargetTensor {
  /** Its `state_dict` name. */
  name: string;
  shape: number[];
  size: number;
  /** The fan-in of its layer (PyTorch's init scale is 1/√(3·fan_in)). */
  fanIn: number;
}

function cnnTensors(config: Config, info: DatasetInfo): TargetTensor[] {
  const image = info.image;
  if (!image) {
    throw new RangeError(
      `hypernet --target cnn needs an image dataset (channels × height × width); this dataset has ${info.features} flat features: use --target mlp`,
    );
  }
  const out: TargetTensor[] = [];
  let channels = image.channels;
  let [h, w] = [image.height, image.width];
  parseWidths(config.channels).forEach((c, i) => {
    if (h < 2 || w < 2) {
      throw new RangeError(
        `hypernet --channels ${config.channels}: after ${i} pooled convolutions the ${image.height}×${image.width} image is ${h}×${w}, too small for another; use fewer channels entries`,
      );
    }
    const fanIn = channels * 9;
    out.push(tensor(`conv${i + 1}.weight`, [c, channels, 3, 3], fanIn));
    out.push(tensor(`conv${i + 1}.bias`, [c], fanIn));
    channels = c;
    [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
  });
  const features = channels * h * w;
  const classes = info.outputs ?? info.classes;
  out.push(tensor("fc.weight", [classes, features], features));
  out.push(tensor("fc.bias", [classes], features));
  return out;
}

function mlpTensors(config: Config, info: DatasetInfo): TargetTensor[] {
  const out: TargetTensor[] = [];
  let prev = info.features;
  parseWidths(config.hidden).forEach((width, i) => {
    out.push(tensor(`layers.${i}.weight`, [width, prev], prev));
    out.push(tensor(`layers.${i}.bias`, [width], prev));
    prev = width;
  });
  const classes = info.outputs ?? info.classes;
  out.push(tensor("head.weight", [classes, prev], prev));
  out.push(tensor("head.bias", [classes], prev));
  return out;
}

function tensor(name: string, shape: number[], fanIn: number): TargetTensor {
  return { name, shape, size: shape.reduce((a, b) => a * b, 1), fanIn };
}

/** The target network's tensors under `target` (cnn or mlp), in order. */
export function targetTensors(config: Config, info: DatasetInfo): TargetTensor[] {
  return config.target === "mlp" ? mlpTensors(config, info) : cnnTensors(config, info);
}

/** Standard normal density. */
const phi = (t: number) => Math.exp(-t * t / 2) / Math.sqrt(2 * Math.PI);

/** erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), enough for a variance at init. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return Math.sign(x) * (1 - poly * Math.exp(-x * x));
}

const SELU = { alpha: 1.6732632423543772, lambda: 1.0507009873554805 };

/** The activations in float64 (what wgsl/activation.wgsl computes), for the variance at init. */
const ACTIVATION_FNS: Record<Activation, (x: number) => number> = {
  identity: (x) => x,
  relu: (x) => Math.max(x, 0),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  selu: (x) => SELU.lambda * (x > 0 ? x : SELU.alpha * Math.expm1(x)),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  silu: (x) => x / (1 + Math.exp(-x)),
};

/** E[f(u)²] for u ~ N(0, q), by the trapezoid rule over ±10 standard deviations. */
export function secondMoment(activation: Activation, q: number): number {
  const f = ACTIVATION_FNS[activation];
  const steps = 4000;
  const dt = 20 / steps;
  let s = 0;
  for (let i = 0; i <= steps; i++) {
    const t = -10 + i * dt;
    s += (i === 0 || i === steps ? 0.5 : 1) * f(Math.sqrt(q) * t) ** 2 * phi(t);
  }
  return s * dt;
}

/**
 * The generator's expected output std at initialisation: its input has second moment 1 (N(0, 1)
 * embeddings, or ±1 bits); a LeCun-normal layer keeps the second moment of its input as its
 * pre-activation variance (zero-mean weights of variance 1/fan_in, zero biases), and an
 * activation turns variance q into E[f(u)²], u ~ N(0, q).
 */
export function generatorStd(depth: number, activation: Activation): number {
  let q = 1;
  for (let l = 0; l < depth; l++) q = secondMoment(activation, q);
  return Math.sqrt(q);
}

function positiveInt(config: Config, key: string): number {
  const v = Number(config[key]);
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
  }
  return v;
}

/**
 * Builds the generator on `g` and returns every target tensor it generates, by `state_dict` name
 * and in the target's shape (the weights `build` uses, and what `deno task export` writes).
 */
export function generateTargetWeights(
  g: Graph,
  config: Config,
  info: DatasetInfo,
): Record<string, Tensor> {
  const targets = targetTensors(config, info);
  const chunk = positiveInt(config, "chunk");
  const depth = Number(config.gen_depth);
  if (!Number.isInteger(depth) || depth < 0) {
    throw new RangeError(
      `gen_depth must be an integer ≥ 0, got ${JSON.stringify(config.gen_depth)}`,
    );
  }
  const width = positiveInt(config, "gen_width");
  const activation = String(config.gen_activation) as Activation;
  const rowsOf = targets.map((t) => Math.ceil(t.size / chunk));
  const rows = rowsOf.reduce((a, b) => a + b, 0);
  let h: Tensor;
  if (config.generator === "index-mlp") {
    h = nn.indexBits(g, rows, Math.max(1, Math.ceil(Math.log2(rows))));
  } else {
    h = g.param("embeddings", [rows, positiveInt(config, "z_dim")], { kind: "normal", std: 1 });
  }
  for (let l = 0; l < depth; l++) {
    h = nn.linear(g, h, `generator.${l}`, { out: width, activation, init: "lecun-normal" });
  }
  const out = nn.linear(g, h, `generator.${depth}`, { out: chunk, init: "lecun-normal" });
  const flat = g.reshape(out, [1, rows * chunk]);
  const std = generatorStd(depth, activation);
  const weights: Record<string, Tensor> = {};
  let row = 0;
  targets.forEach((t, j) => {
    const piece = nn.slice(g, flat, row * chunk, t.size);
    const scaled = nn.scale(g, piece, 1 / Math.sqrt(3 * t.fanIn) / std);
    weights[t.name] = g.reshape(scaled, t.shape);
    row += rowsOf[j]!;
  });
  return weights;
}

/** The target CNN on `input` [B, C·H·W] (NCHW rows) with the given weights; logits [B, K]. */
function cnnForward(
  g: Graph,
  input: Tensor,
  w: Record<string, Tensor>,
  config: Config,
  info: DatasetInfo,
): Tensor {
  const { channels, height, width } = info.image!;
  let h = g.reshape(input, [g.batch, channels, height, width]);
  parseWidths(config.channels).forEach((_, i) => {
    const name = `conv${i + 1}`;
    h = nn.conv2dWith(g, h, w[`${name}.weight`]!, w[`${name}.bias`], {
      layout: i === 0 ? "nchw" : "nhwc",
      activation: "relu",
      name,
    });
    h = nn.maxPool2d(g, h, 2);
  });
  const [b, oh, ow, c] = h.shape as [number, number, number, number];
  // Channels-first before flattening: PyTorch's `torch.flatten(x, 1)` order.
  const chw = nn.transpose(g, g.reshape(h, [b, oh * ow, c]), 1, 2);
  const flat = g.reshape(chw, [b, c * oh * ow]);
  return nn.linearWith(g, flat, w["fc.weight"]!, w["fc.bias"], { name: "fc" });
}

/** The target MLP: ReLU hidden layers, then the head. */
function mlpForward(g: Graph, input: Tensor, w: Record<string, Tensor>, config: Config): Tensor {
  let h = input;
  parseWidths(config.hidden).forEach((_, i) => {
    h = nn.linearWith(g, h, w[`layers.${i}.weight`]!, w[`layers.${i}.bias`], {
      activation: "relu",
      name: `layers.${i}`,
    });
  });
  return nn.linearWith(g, h, w["head.weight"]!, w["head.bias"], { name: "head" });
}

/** The `hypernet` model plugin. */
export const hypernet: ModelPlugin = {
  kind: "model",
  name: "hypernet",
  description:
    "static hypernetwork generating a CNN or MLP: target (cnn|mlp), channels, hidden, generator (embedding|index-mlp), chunk, z_dim, gen_width, gen_depth, gen_activation",
  defaults: {
    target: "cnn",
    channels: "4,8",
    hidden: "128",
    generator: "embedding",
    chunk: 64,
    z_dim: 32,
    gen_width: 64,
    gen_depth: 1,
    gen_activation: "relu",
  },
  keys: {
    target: { choices: HYPERNET_TARGETS },
    generator: { choices: HYPERNET_GENERATORS },
    chunk: { type: "int", min: 1 },
    z_dim: { type: "int", min: 1 },
    gen_width: { type: "int", min: 1 },
    gen_depth: { type: "int", min: 0 },
    gen_activation: { choices: Object.keys(ACTIVATIONS) },
  },
  recipe: { epochs: 1, lr: 1e-2, batch_size: 128 },
  build(g, input, config, info) {
    const weights = generateTargetWeights(g, config, info);
    return config.target === "mlp"
      ? mlpForward(g, input, weights, config)
      : cnnForward(g, input, weights, config, info);
  },
  generated: generateTargetWeights,
};
