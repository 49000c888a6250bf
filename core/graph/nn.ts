/**
 * Layers that models build their graph from. Each declares its parameters (named as the
 * equivalent PyTorch module's `state_dict`, Linear weights `[out, in]`) and applies ops whose
 * forward and backward live in `rules.ts`. Tensors are `[batch, …, features]`: linear layers,
 * LayerNorm and biases act on the last axis; everything else is elementwise or names its axes.
 *
 * @module
 */

import { type Graph, kaimingUniform, lecunNormal, type Tensor } from "./graph.ts";
import { type Activation, activationId } from "../ops/activation_ids.ts";
import { FFF_MAX_DEPTH, FFF_MAX_LEAF_WIDTH, fffSizes } from "../ops/fff.ts";

function lastAxis(x: Tensor, what: string): number {
  if (x.shape.length < 2) {
    throw new RangeError(
      `${what}: tensor "${x.name}" has shape [${x.shape}]; it needs [batch, …, features]`,
    );
  }
  return x.shape[x.shape.length - 1]!;
}

/** x's shape with its last axis replaced by `n`. */
function withLast(x: Tensor, n: number): number[] {
  return [...x.shape.slice(0, -1), n];
}

/** Options of {@link linear}. */
export interface LinearOptions {
  /** Output features. */
  out: number;
  /** Whether to add a bias `<name>.bias` [out]; default true. */
  bias?: boolean;
  /** An activation fused into the matmul's epilogue; its pre-activation is saved for backward. */
  activation?: Activation;
  /**
   * How the parameters start: "kaiming-uniform" (`nn.Linear`'s default, U(±1/√fan_in) for the
   * weight and the bias) or "lecun-normal" (N(0, 1/fan_in) weights and zero biases, what
   * self-normalising SELU networks need). Default "kaiming-uniform".
   */
  init?: LinearInit;
}

/** The initialisations {@link linear} offers. */
export const LINEAR_INITS = ["kaiming-uniform", "lecun-normal"] as const;

/** One of {@link LINEAR_INITS}. */
export type LinearInit = typeof LINEAR_INITS[number];

/**
 * y = act(x·Wᵀ + b) over x's last axis, as `nn.Linear` (+ activation), for x of any rank
 * `[…, in]` → `[…, out]`; parameters `<name>.weight` [out, in] and `<name>.bias` [out].
 */
export function linear(g: Graph, x: Tensor, name: string, options: LinearOptions): Tensor {
  const inFeatures = lastAxis(x, `linear "${name}"`);
  const init = options.init ?? "kaiming-uniform";
  if (!LINEAR_INITS.includes(init)) {
    throw new RangeError(
      `linear "${name}": init must be one of ${
        LINEAR_INITS.map((i) => `"${i}"`).join(", ")
      }, got "${init}"`,
    );
  }
  const lecun = init === "lecun-normal";
  const weight = g.param(
    `${name}.weight`,
    [options.out, inFeatures],
    lecun ? lecunNormal(inFeatures) : kaimingUniform(inFeatures),
  );
  const bias = (options.bias ?? true)
    ? g.param(
      `${name}.bias`,
      [options.out],
      lecun ? { kind: "zeros" } : kaimingUniform(inFeatures),
      { decay: false },
    )
    : undefined;
  return linearWith(g, x, weight, bias, { activation: options.activation, name });
}

/**
 * y = act(x·Wᵀ + b) with `weight` [out, in] (and `bias` [out]) any tensors — parameters, or the
 * output of another network (a hypernetwork's generated weights): gradients reach them either way.
 */
export function linearWith(
  g: Graph,
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: {
    activation?: Activation;
    name?: string;
    /**
     * Rows per partial product of the weight's gradient (dividing x's rows): the product over
     * many rows (a convolution's batch × pixels) is split and summed, so it runs in parallel.
     */
    splitRows?: number;
  } = {},
): Tensor {
  const name = options.name ?? weight.name.replace(/\.weight$/, "");
  const inFeatures = lastAxis(x, `linear "${name}"`);
  if (weight.shape.length !== 2 || weight.shape[1] !== inFeatures) {
    throw new RangeError(
      `linear "${name}": weight "${weight.name}" is [${weight.shape}], x "${x.name}" has ${inFeatures} features; the weight must be [out, ${inFeatures}]`,
    );
  }
  const out = weight.shape[0]!;
  if (bias && (bias.size !== out)) {
    throw new RangeError(
      `linear "${name}": bias "${bias.name}" has ${bias.size} values, not ${out}`,
    );
  }
  const activation = options.activation ?? "identity";
  activationId(activation);
  const shape = withLast(x, out);
  const saved = activation === "identity" ? [] : [g.scratch(`${name}.pre`, shape)];
  return g.apply(
    "linear",
    bias ? [x, weight, bias] : [x, weight],
    shape,
    { activation, name, ...(options.splitRows ? { splitRows: options.splitRows } : {}) },
    saved,
  );
}

/**
 * Batched matmul: `[B, M, K] × [B, K, N] → [B, M, N]` (every product its own pair), or with
 * `b` of rank 2 `[K, N]`, one matrix shared by the batch. Leading axes beyond B flatten into it.
 */
export function matmul(g: Graph, a: Tensor, b: Tensor): Tensor {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(
      `matmul: "${a.name}" [${a.shape}] and "${b.name}" [${b.shape}] need rank ≥ 2`,
    );
  }
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [kb, n] = b.shape.slice(-2) as [number, number];
  if (k !== kb) {
    throw new RangeError(
      `matmul: "${a.name}" [${a.shape}] · "${b.name}" [${b.shape}]: ${k} ≠ ${kb}`,
    );
  }
  const batchA = a.size / (m * k);
  const batchB = b.size / (kb * n);
  if (batchB !== 1 && batchB !== batchA) {
    throw new RangeError(
      `matmul: "${a.name}" has ${batchA} products, "${b.name}" ${batchB}; b needs 1 (shared) or ${batchA}`,
    );
  }
  return g.apply("matmul", [a, b], [...a.shape.slice(0, -1), n], {
    m,
    n,
    k,
    batch: batchA,
    shared: batchB === 1,
  });
}

/** LayerNorm over the last axis with affine γ (ones) and β (zeros): `<name>.weight`, `<name>.bias`. */
export function layerNorm(g: Graph, x: Tensor, name: string, eps = 1e-5): Tensor {
  const c = lastAxis(x, `layerNorm "${name}"`);
  const rows = x.size / c;
  const gamma = g.param(`${name}.weight`, [c], { kind: "ones" }, { decay: false });
  const beta = g.param(`${name}.bias`, [c], { kind: "zeros" }, { decay: false });
  const stats = { f32: true };
  const saved = [
    g.scratch(`${name}.mean`, [rows], stats),
    g.scratch(`${name}.rstd`, [rows], stats),
  ];
  return g.apply("layernorm", [x, gamma, beta], x.shape, { eps }, saved);
}

/** y = f(x) elementwise. */
export function activation(g: Graph, x: Tensor, kind: Activation): Tensor {
  activationId(kind);
  return g.apply("activation", [x], x.shape, { activation: kind });
}

/**
 * a + b: elementwise when their shapes are equal, or b broadcast over a's leading axes when b's
 * shape is a suffix of a's (a bias [C] added to every row of [B, T, C]).
 */
export function add(g: Graph, a: Tensor, b: Tensor): Tensor {
  const same = a.size === b.size;
  const suffix = b.shape.length <= a.shape.length &&
    b.shape.every((d, i) => d === a.shape[a.shape.length - b.shape.length + i]!);
  if (!same && !suffix) {
    throw new RangeError(
      `add: "${a.name}" [${a.shape}] and "${b.name}" [${b.shape}]: b must have a's shape or a suffix of it`,
    );
  }
  return g.apply(same ? "add" : "add_broadcast", [a, b], a.shape);
}

/** Inverted dropout with drop probability p (alpha dropout for SELU networks); identity in eval. */
export function dropout(g: Graph, x: Tensor, p: number, options: { alpha?: boolean } = {}): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  return g.apply("dropout", [x], x.shape, { p, alpha: options.alpha ?? false });
}

/**
 * Stochastic depth on a residual branch (DropPath, algorithms.md §9.7): in training each sample's
 * branch is dropped with probability p and scaled by 1/(1−p) when kept, so `add(g, h,
 * dropPath(g, f, p))` keeps the skip connection; the identity in evaluation; p = 0 returns it.
 */
export function dropPath(g: Graph, branch: Tensor, p: number): Tensor {
  if (!(p >= 0 && p < 1)) {
    throw new RangeError(`drop-path probability must be in [0, 1), got ${p}`);
  }
  if (p === 0) return branch;
  const rows = branch.shape[0]!;
  const scales = g.scratch(`${branch.name}.drop_path_scales`, [rows], { f32: true });
  return g.apply("drop_path", [branch], branch.shape, { p }, [scales]);
}

/**
 * The drop probabilities of `depth` residual blocks, rising linearly from 0 at the first to `max`
 * at the last (timm's `linspace(0, max, depth)`; one block: 0).
 */
export function dropPathRates(max: number, depth: number): number[] {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new RangeError(`dropPathRates: depth must be an integer ≥ 1, got ${depth}`);
  }
  return Array.from({ length: depth }, (_, l) => depth === 1 ? 0 : max * l / (depth - 1));
}

/** Options of {@link fff}. */
export interface FffOptions {
  /** Output features. */
  out: number;
  /** Tree depth D ≥ 1: 2^D − 1 node neurons, 2^D leaves. */
  depth: number;
  /** Hidden units of each leaf (its training width is 2^D · leafWidth). */
  leafWidth: number;
  /** Region leak: per row and node, the decision flipped with this probability in training. */
  leak?: number;
  /**
   * The hardening loss's weight h: an auxiliary loss term `<name>.entropy`, h · the mean node
   * entropy over the batch; 0 adds none. Default 0.1 (the reference repo's MNIST example).
   */
  hardening?: number;
}

/**
 * A Fast Feedforward layer (Belcak & Wattenhofer 2023, algorithms.md §8) over x's last axis,
 * `[…, in]` → `[…, out]`: in training the soft mixture of all 2^D leaves (ReLU 2-layer FFs) down
 * a tree of sigmoid node neurons, with region leak and the hardening entropy as an auxiliary loss
 * term; in evaluation one hard path per sample, reading only the chosen leaf. Parameters (init as
 * the reference repo): `<name>.nodes.weight` [N, in], `<name>.nodes.bias` [N] U(±1/√in);
 * `<name>.fc1.weight` [L·W, in], `<name>.fc1.bias` [L·W] U(±1/√in) — leaf ℓ's rows ℓW…;
 * `<name>.fc2.weight` [out, L·W], `<name>.fc2.bias` [L, out] U(±1/√W) — leaf ℓ's columns ℓW….
 */
export function fff(g: Graph, x: Tensor, name: string, options: FffOptions): Tensor {
  const inFeatures = lastAxis(x, `fff "${name}"`);
  const { out, depth, leafWidth } = options;
  const leak = options.leak ?? 0;
  const hardening = options.hardening ?? 0.1;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`fff "${name}": ${what}`);
  };
  check(Number.isInteger(out) && out >= 1, `out must be a positive integer, got ${out}`);
  check(
    Number.isInteger(depth) && depth >= 1 && depth <= FFF_MAX_DEPTH,
    `depth (--fff-depth) must be an integer in [1, ${FFF_MAX_DEPTH}], got ${depth}`,
  );
  check(
    Number.isInteger(leafWidth) && leafWidth >= 1 && leafWidth <= FFF_MAX_LEAF_WIDTH,
    `leaf width (--leaf-width) must be an integer in [1, ${FFF_MAX_LEAF_WIDTH}], got ${leafWidth}`,
  );
  check(leak >= 0 && leak < 1, `region leak must be in [0, 1), got ${leak}`);
  check(hardening >= 0 && Number.isFinite(hardening), `hardening must be ≥ 0, got ${hardening}`);
  const { nodes, leaves } = fffSizes(depth);
  const wide = leaves * leafWidth;
  const rows = x.size / inFeatures;
  const inInit = kaimingUniform(inFeatures);
  const leafInit = kaimingUniform(leafWidth);
  const nodeW = g.param(`${name}.nodes.weight`, [nodes, inFeatures], inInit);
  const nodeB = g.param(`${name}.nodes.bias`, [nodes], inInit, { decay: false });
  const w1 = g.param(`${name}.fc1.weight`, [wide, inFeatures], inInit);
  const b1 = g.param(`${name}.fc1.bias`, [wide], inInit, { decay: false });
  const w2 = g.param(`${name}.fc2.weight`, [out, wide], leafInit);
  const b2 = g.param(`${name}.fc2.bias`, [leaves, out], leafInit, { decay: false });
  const z = g.apply("fff_nodes", [x, nodeW, nodeB], [rows, nodes], {
    activation: "identity",
    name: `${name}.nodes`,
  });
  if (hardening > 0) {
    const entropy = g.apply("fff_entropy", [z], [rows], { depth, name }, [], { f32: true });
    g.addLoss(entropy, hardening, { name: `${name}.entropy` });
  }
  const f32 = { f32: true };
  const saved = [
    g.scratch(`${name}.probs`, [rows, nodes], f32),
    g.scratch(`${name}.mixture`, [rows, leaves], f32),
    g.scratch(`${name}.pre`, [rows, wide], f32),
    g.scratch(`${name}.hidden`, [rows, wide], f32),
    g.scratch(`${name}.gated`, [rows, wide], f32),
  ];
  return g.apply(
    "fff",
    [x, z, w1, b1, w2, b2, nodeW, nodeB],
    withLast(x, out),
    { name, depth, width: leafWidth, inputs: inFeatures, outputs: out, leak },
    saved,
  );
}

/** x under another shape (same number of values): free, no copy. `-1` infers one axis. */
export function reshape(g: Graph, x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  return g.reshape(x, resolved);
}

function axisOf(x: Tensor, axis: number, what: string): number {
  const a = axis < 0 ? x.shape.length + axis : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.shape.length) {
    throw new RangeError(`${what}: axis ${axis} is outside "${x.name}" [${x.shape}]`);
  }
  return a;
}

/** x with axes `i` and `j` exchanged (a kernel; its backward exchanges them back). */
export function transpose(g: Graph, x: Tensor, i: number, j: number): Tensor {
  const a = axisOf(x, i, "transpose");
  const b = axisOf(x, j, "transpose");
  if (a === b) return x;
  const shape = [...x.shape];
  [shape[a], shape[b]] = [shape[b]!, shape[a]!];
  return g.apply("transpose", [x], shape, { axes: [Math.min(a, b), Math.max(a, b)] });
}

/** The mean over one axis (removed from the shape); `sum: true` sums instead. */
export function mean(g: Graph, x: Tensor, axis: number, options: { sum?: boolean } = {}): Tensor {
  const a = axisOf(x, axis, "mean");
  const shape = x.shape.filter((_, i) => i !== a);
  return g.apply("mean", [x], shape.length > 0 ? shape : [1], {
    axis: a,
    sum: options.sum ?? false,
  });
}

/** Concatenation along the last axis: every input `[…, F_i]` with the same leading axes. */
export function concat(g: Graph, xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new RangeError("concat: no tensors");
  const lead = xs[0]!.shape.slice(0, -1).join(",");
  for (const x of xs) {
    lastAxis(x, "concat");
    if (x.shape.slice(0, -1).join(",") !== lead) {
      throw new RangeError(
        `concat: "${x.name}" [${x.shape}] and "${xs[0]!.name}" [${
          xs[0]!.shape
        }] differ before the last axis`,
      );
    }
  }
  if (xs.length === 1) return xs[0]!;
  const width = xs.reduce((w, x) => w + x.shape[x.shape.length - 1]!, 0);
  return g.apply("concat", xs, withLast(xs[0]!, width));
}

/** Columns `start .. start + length` of the last axis. */
export function slice(g: Graph, x: Tensor, start: number, length: number): Tensor {
  const c = lastAxis(x, "slice");
  if (
    !Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 1 ||
    start + length > c
  ) {
    throw new RangeError(
      `slice: [${start}, ${start + length}) is outside the ${c} columns of "${x.name}"`,
    );
  }
  if (start === 0 && length === c) return x;
  return g.apply("slice", [x], withLast(x, length), { start, length });
}

/** The last axis padded with zeros on the right to `width` columns (≥ its own). */
export function pad(g: Graph, x: Tensor, width: number): Tensor {
  const c = lastAxis(x, "pad");
  if (!Number.isInteger(width) || width < c) {
    throw new RangeError(`pad: width ${width} is less than the ${c} columns of "${x.name}"`);
  }
  if (width === c) return x;
  return g.apply("pad", [x], withLast(x, width));
}

/** Options shared by the built-in losses. */
export interface LossOptions {
  /** Label smoothing ε (cross-entropy only, training only). */
  smoothing?: number;
}

/**
 * The per-row loss of `predictions` against the batch's labels, and its correct flags:
 * `cross-entropy` (softmax, logits [rows, K]), `bce` (binary, one logit per row: [rows] or
 * [rows, 1]), `mse` (against one-hot labels, [rows, K]). Returns the loss [rows]; add it with
 * {@link Graph.addLoss} (the trainer adds the configured one as the main term).
 */
export function labelLoss(
  g: Graph,
  kind: "cross-entropy" | "bce" | "mse",
  predictions: Tensor,
  options: LossOptions = {},
): { loss: Tensor; correct: Tensor } {
  const width = predictions.shape.length === 1
    ? 1
    : predictions.shape[predictions.shape.length - 1]!;
  const rows = predictions.size / width;
  if (kind === "bce" && width !== 1) {
    throw new RangeError(
      `bce: "${predictions.name}" [${predictions.shape}] needs one logit per row`,
    );
  }
  const smoothing = options.smoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) {
    throw new RangeError(`label smoothing must be in [0, 1], got ${smoothing}`);
  }
  const correct = g.scratch(`${kind}.correct`, [rows], { f32: true });
  const loss = g.apply(
    kind === "cross-entropy" ? "softmax_cross_entropy" : kind,
    [predictions],
    [rows],
    { rows, classes: width, smoothing },
    [correct],
    { f32: true },
  );
  return { loss, correct };
}

/** Options of {@link positionEncoding}. */
export interface PositionEncodingOptions {
  /** "bits" (±1, LSB first), "sin" (multi-scale sinusoids) or "fourier" (random Fourier features). */
  kind: "bits" | "sin" | "fourier";
  /** Output features (even for "sin" and "fourier"; at most 48 meaningful bits for "bits"). */
  features: number;
  /** Columns holding the position: 1 (p < 2^24) or 2 (p = w0 + w1·2^24, up to 2^48). */
  words?: number;
  /** The sin/cos pairs' frequencies in turns per position (core/ops positionFrequencies). */
  frequencies?: ArrayLike<number>;
}

/**
 * The encoding [batch, features] of the absolute position held by the first `words` columns of
 * x [batch, columns] (AUNN, algorithms.md §6.2); no gradient flows back to x.
 */
export function positionEncoding(g: Graph, x: Tensor, options: PositionEncodingOptions): Tensor {
  const columns = lastAxis(x, "positionEncoding");
  if (x.shape.length !== 2) {
    throw new RangeError(`positionEncoding: "${x.name}" [${x.shape}] must be [batch, columns]`);
  }
  const words = options.words ?? 1;
  if ((words !== 1 && words !== 2) || words > columns) {
    throw new RangeError(
      `positionEncoding: words must be 1 or 2 and at most the ${columns} columns of "${x.name}", got ${words}`,
    );
  }
  const features = options.features;
  const pairs = options.kind !== "bits";
  if (!Number.isInteger(features) || features < 1 || (pairs && features % 2 !== 0)) {
    throw new RangeError(
      `positionEncoding: features must be a positive${
        pairs ? " even" : ""
      } integer for "${options.kind}", got ${features}`,
    );
  }
  const frequencies = Array.from(options.frequencies ?? []);
  if (pairs && frequencies.length !== features / 2) {
    throw new RangeError(
      `positionEncoding: "${options.kind}" needs ${
        features / 2
      } frequencies, got ${frequencies.length}`,
    );
  }
  return g.apply("position_encoding", [x], [x.shape[0]!, features], {
    kind: options.kind,
    features,
    words,
    frequencies,
  });
}
/** Options of {@link conv2d} and {@link conv2dWith}. */
export interface ConvOptions {
  /** Zeros added on every side; default (k − 1) / 2 rounded down ("same" for odd k). */
  padding?: number;
  /** An activation fused into the matmul's epilogue. */
  activation?: Activation;
  /**
   * How `x` is laid out: "nhwc" [B, H, W, C] (default; what convolutions produce) or "nchw"
   * [B, C, H, W] (a dataset's images).
   */
  layout?: "nhwc" | "nchw";
  /** The layer's name in messages and dispatch labels. */
  name?: string;
}

/** x's batch, channels, height and width under `layout`, checked to be rank 4. */
function imageDims(x: Tensor, layout: "nhwc" | "nchw", what: string) {
  if (x.shape.length !== 4) {
    throw new RangeError(
      `${what}: tensor "${x.name}" has shape [${x.shape}]; it needs [batch, ${
        layout === "nchw" ? "channels, height, width" : "height, width, channels"
      }]`,
    );
  }
  const [b, d1, d2, d3] = x.shape as [number, number, number, number];
  return layout === "nchw"
    ? { batch: b, channels: d1, height: d2, width: d3 }
    : { batch: b, height: d1, width: d2, channels: d3 };
}

/**
 * A k×k convolution with stride 1 whose weight [O, C, k, k] (PyTorch's `Conv2d.weight` layout)
 * and bias [O] are any tensors — parameters or generated: im2col of x into columns
 * [B, OH, OW, C·k·k], then {@link linearWith} of the columns and the weight viewed as
 * [O, C·k·k]. The output is channels-last [B, OH, OW, O], so bias and activation act on the last
 * axis as everywhere else in the graph; gradients reach x, the weight and the bias.
 */
export function conv2dWith(
  g: Graph,
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: ConvOptions = {},
): Tensor {
  const name = options.name ?? weight.name.replace(/\.weight$/, "");
  const layout = options.layout ?? "nhwc";
  const dims = imageDims(x, layout, `conv2d "${name}"`);
  const [out, inC, kh, kw] = weight.shape as [number, number, number, number];
  if (weight.shape.length !== 4 || inC !== dims.channels || kh !== kw) {
    throw new RangeError(
      `conv2d "${name}": weight "${weight.name}" is [${weight.shape}], x "${x.name}" has ${dims.channels} channels; the weight must be [out, ${dims.channels}, k, k]`,
    );
  }
  const pad = options.padding ?? Math.floor((kh - 1) / 2);
  const oh = dims.height + 2 * pad - kh + 1;
  const ow = dims.width + 2 * pad - kh + 1;
  if (!Number.isInteger(pad) || pad < 0 || oh < 1 || ow < 1) {
    throw new RangeError(
      `conv2d "${name}": a ${kh}×${kh} kernel with padding ${pad} does not fit ${dims.height}×${dims.width}`,
    );
  }
  const cols = g.apply("im2col", [x], [dims.batch, oh, ow, inC * kh * kh], {
    ...dims,
    kernel: kh,
    pad,
    layout,
    name,
  });
  const flat = g.reshape(weight, [out, inC * kh * kh]);
  // dW sums over batch × pixels rows: one partial product per image.
  return linearWith(g, cols, flat, bias, {
    activation: options.activation,
    name,
    splitRows: oh * ow,
  });
}

/**
 * `nn.Conv2d(C, out, kernel, padding=(kernel − 1) / 2)` (+ activation) on x: parameters
 * `<name>.weight` [out, C, k, k] and `<name>.bias` [out], both U(±1/√(C·k·k)) as PyTorch's
 * default; see {@link conv2dWith} for layouts.
 */
export function conv2d(
  g: Graph,
  x: Tensor,
  name: string,
  options: ConvOptions & { out: number; kernel?: number },
): Tensor {
  const k = options.kernel ?? 3;
  const layout = options.layout ?? "nhwc";
  const { channels } = imageDims(x, layout, `conv2d "${name}"`);
  const fanIn = channels * k * k;
  const weight = g.param(`${name}.weight`, [options.out, channels, k, k], kaimingUniform(fanIn));
  const bias = g.param(`${name}.bias`, [options.out], kaimingUniform(fanIn), { decay: false });
  return conv2dWith(g, x, weight, bias, { ...options, name });
}

/**
 * `nn.MaxPool2d(size)` on channels-last x [B, H, W, C] → [B, ⌊H/size⌋, ⌊W/size⌋, C] (stride =
 * size; leftover rows and columns are dropped, as PyTorch does).
 */
export function maxPool2d(g: Graph, x: Tensor, size = 2): Tensor {
  const { batch, height, width, channels } = imageDims(x, "nhwc", "maxPool2d");
  if (!Number.isInteger(size) || size < 1 || size > height || size > width) {
    throw new RangeError(
      `maxPool2d: window ${size} does not fit "${x.name}" [${x.shape}] (height ${height}, width ${width})`,
    );
  }
  const shape = [batch, Math.floor(height / size), Math.floor(width / size), channels];
  return g.apply("max_pool", [x], shape, { size });
}

/** alpha·x for a constant alpha (1 returns x). */
export function scale(g: Graph, x: Tensor, alpha: number): Tensor {
  if (!Number.isFinite(alpha)) throw new RangeError(`scale: alpha ${alpha} is not finite`);
  if (alpha === 1) return x;
  return g.apply("scale", [x], x.shape, { alpha });
}

/**
 * A constant [rows, bits] tensor: row r holds the ±1 binary code of r + first, least significant
 * bit first (+1 for a set bit) — the input of an index-MLP hypernetwork. Computed on the GPU in
 * every forward; no inputs, no gradient.
 */
export function indexBits(g: Graph, rows: number, bits: number, first = 0): Tensor {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) {
    throw new RangeError(`indexBits: bits must be an integer in [1, 32], got ${bits}`);
  }
  return g.apply("index_bits", [], [rows, bits], { first });
}
