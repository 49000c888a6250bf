/**
 * Float64 reference of the Fast Feedforward layer (algorithms.md §8), written from the math, not
 * from the kernels: the soft mixture (node sigmoids, optional region-leak flips, leaf weights as
 * products down the tree, every leaf's 2-layer ReLU FF), the hard path (z ≥ 0 goes right), the
 * hardening entropy with the repo's clamp of p to [1e-6, 1 − 1e-6] and its derivative
 * ∂H/∂z = −z·p(1−p).
 */

/** The layer's sizes. */
export interface FffRefShape {
  rows: number;
  inputs: number;
  outputs: number;
  depth: number;
  width: number;
}

/** Its weights, laid out as `nn.fff` declares them. */
export interface FffRefWeights {
  nodeW: ArrayLike<number>;
  nodeB: ArrayLike<number>;
  w1: ArrayLike<number>;
  b1: ArrayLike<number>;
  w2: ArrayLike<number>;
  b2: ArrayLike<number>;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Node logits z [rows, N]. */
export function fffNodeLogitsRef(
  s: FffRefShape,
  w: FffRefWeights,
  x: ArrayLike<number>,
): Float64Array {
  const nodes = 2 ** s.depth - 1;
  const z = new Float64Array(s.rows * nodes);
  for (let r = 0; r < s.rows; r++) {
    for (let n = 0; n < nodes; n++) {
      let v = w.nodeB[n]!;
      for (let i = 0; i < s.inputs; i++) v += x[r * s.inputs + i]! * w.nodeW[n * s.inputs + i]!;
      z[r * nodes + n] = v;
    }
  }
  return z;
}

/** Probabilities of going right, p = σ(z), flipped to 1 − p where `flips` is true. */
export function fffProbsRef(z: ArrayLike<number>, flips?: ArrayLike<boolean>): Float64Array {
  return Float64Array.from(z, (v, i) => (flips?.[i] ? 1 - sigmoid(v) : sigmoid(v)));
}

/** Leaf mixture weights [rows, L]: c_ℓ = Π_d (b_d ? p_{n_d} : 1 − p_{n_d}). */
export function fffMixtureRef(depth: number, rows: number, probs: ArrayLike<number>): Float64Array {
  const nodes = 2 ** depth - 1;
  const leaves = 2 ** depth;
  const c = new Float64Array(rows * leaves);
  for (let r = 0; r < rows; r++) {
    for (let leaf = 0; leaf < leaves; leaf++) {
      let n = 0;
      let v = 1;
      for (let d = 0; d < depth; d++) {
        const b = (leaf >> (depth - 1 - d)) & 1;
        const p = probs[r * nodes + n]!;
        v *= b ? p : 1 - p;
        n = 2 * n + 1 + b;
      }
      c[r * leaves + leaf] = v;
    }
  }
  return c;
}

/** Leaf ℓ's output on row r of x: W2_ℓ·relu(W1_ℓ x + b1_ℓ) + b2_ℓ. */
export function fffLeafRef(
  s: FffRefShape,
  w: FffRefWeights,
  x: ArrayLike<number>,
  r: number,
  leaf: number,
): Float64Array {
  const leaves = 2 ** s.depth;
  const wide = leaves * s.width;
  const h = new Float64Array(s.width);
  for (let j = 0; j < s.width; j++) {
    const u = leaf * s.width + j;
    let v = w.b1[u]!;
    for (let i = 0; i < s.inputs; i++) v += x[r * s.inputs + i]! * w.w1[u * s.inputs + i]!;
    h[j] = Math.max(v, 0);
  }
  const y = new Float64Array(s.outputs);
  for (let o = 0; o < s.outputs; o++) {
    let v = w.b2[leaf * s.outputs + o]!;
    for (let j = 0; j < s.width; j++) v += w.w2[o * wide + leaf * s.width + j]! * h[j]!;
    y[o] = v;
  }
  return y;
}

/** The soft mixture's output [rows, out] and its parts. */
export function fffSoftRef(
  s: FffRefShape,
  w: FffRefWeights,
  x: ArrayLike<number>,
  flips?: ArrayLike<boolean>,
): { z: Float64Array; probs: Float64Array; mix: Float64Array; y: Float64Array } {
  const leaves = 2 ** s.depth;
  const z = fffNodeLogitsRef(s, w, x);
  const probs = fffProbsRef(z, flips);
  const mix = fffMixtureRef(s.depth, s.rows, probs);
  const y = new Float64Array(s.rows * s.outputs);
  for (let r = 0; r < s.rows; r++) {
    for (let leaf = 0; leaf < leaves; leaf++) {
      const yl = fffLeafRef(s, w, x, r, leaf);
      const c = mix[r * leaves + leaf]!;
      for (let o = 0; o < s.outputs; o++) y[r * s.outputs + o]! += c * yl[o]!;
    }
  }
  return { z, probs, mix, y };
}

/** The hard path: per row the leaf reached by going right where z ≥ 0, and its output. */
export function fffHardRef(
  s: FffRefShape,
  w: FffRefWeights,
  x: ArrayLike<number>,
): { leaves: number[]; y: Float64Array } {
  const nodes = 2 ** s.depth - 1;
  const z = fffNodeLogitsRef(s, w, x);
  const chosen: number[] = [];
  const y = new Float64Array(s.rows * s.outputs);
  for (let r = 0; r < s.rows; r++) {
    let n = 0;
    for (let d = 0; d < s.depth; d++) n = 2 * n + 1 + (z[r * nodes + n]! >= 0 ? 1 : 0);
    const leaf = n - nodes;
    chosen.push(leaf);
    y.set(fffLeafRef(s, w, x, r, leaf), r * s.outputs);
  }
  return { leaves: chosen, y };
}

/** The logit where σ(z) = 1 − 1e-6: the repo's clamp of p. */
export const Z_CLAMP = Math.log((1 - 1e-6) / 1e-6);

/** H(p) = −p ln p − (1−p) ln(1−p), p = σ(z) clamped to [1e-6, 1 − 1e-6]. */
export function binaryEntropyRef(z: number): number {
  const p = Math.min(Math.max(sigmoid(z), 1e-6), 1 - 1e-6);
  return -p * Math.log(p) - (1 - p) * Math.log(1 - p);
}

/** Per-row mean node entropy [rows] of z [rows, N]. */
export function fffEntropyRef(z: ArrayLike<number>, nodes: number): Float64Array {
  const rows = z.length / nodes;
  const h = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let n = 0; n < nodes; n++) s += binaryEntropyRef(z[r * nodes + n]!);
    h[r] = s / nodes;
  }
  return h;
}

/** dz of Σ_r dh[r]·h[r]: dh[r]·(−z·p(1−p))/N inside the clamp, 0 outside. */
export function fffEntropyBackwardRef(
  z: ArrayLike<number>,
  nodes: number,
  dh: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(z, (v, i) => {
    if (Math.abs(v) >= Z_CLAMP) return 0;
    const p = sigmoid(v);
    return dh[Math.floor(i / nodes)]! * (-v * p * (1 - p)) / nodes;
  });
}
