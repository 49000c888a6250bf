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
  options: { activation?: Activation; name?: string } = {},
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
    { activation, name },
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
