/**
 * A float64 CPU trainer for the `mlp` model with softmax cross-entropy and AdamW: the reference
 * the golden test holds the GPU trainer's first losses against. Plain loops; it defines what one
 * training step means (batch from the permutation, mean loss, decoupled weight decay on weights
 * only, bias-corrected moments).
 */

import { activationDerivativeRef, activationForwardRef } from "./activation.ts";
import type { Activation } from "../../core/ops/activation_ids.ts";

/** One Linear layer: weight [out, in] and bias [out], float64. */
export interface RefLinear {
  w: Float64Array;
  b: Float64Array;
  inF: number;
  outF: number;
}

/** What the reference trains. */
export interface RefTrainerOptions {
  layers: RefLinear[];
  activation: Activation;
  /** Normalised inputs [count, features] and labels. */
  x: Float64Array;
  labels: ArrayLike<number>;
  features: number;
  classes: number;
  batch: number;
  /** Row order of each step's batch: permutation[step·batch + r]. */
  order: Uint32Array;
  lrs: Float64Array;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Label smoothing ε; default 0. */
  labelSmoothing?: number;
  /** λ of each step's mixup (row r mixed with row B−1−r); none = no mixup. */
  mixupLambdas?: ArrayLike<number>;
}

/** One batch's mean loss and the gradient of every parameter (weight, bias per layer, in order). */
export interface RefLossAndGrads {
  loss: number;
  grads: Float64Array[];
}

/**
 * The mean softmax cross-entropy of the rows `rows` (mixed with λ and row B−1−r when `lambda` is
 * below 1, smoothed with ε) and its gradient with respect to every parameter, in float64.
 */
export function refLossAndGrads(
  o: Pick<RefTrainerOptions, "layers" | "activation" | "x" | "labels" | "features" | "classes">,
  rows: readonly number[],
  lambda = 1,
  smoothing = 0,
): RefLossAndGrads {
  const batch = rows.length;
  // Forward, keeping each layer's input and pre-activation.
  const inputs: Float64Array[] = [];
  const pres: Float64Array[] = [];
  let h: Float64Array = new Float64Array(batch * o.features);
  rows.forEach((row, r) =>
    h.set(o.x.subarray(row * o.features, (row + 1) * o.features), r * o.features)
  );
  if (lambda !== 1) {
    const mixed = new Float64Array(h.length);
    for (let r = 0; r < batch; r++) {
      const q = batch - 1 - r;
      for (let j = 0; j < o.features; j++) {
        mixed[r * o.features + j] = lambda * h[r * o.features + j]! +
          (1 - lambda) * h[q * o.features + j]!;
      }
    }
    h = mixed;
  }
  o.layers.forEach((l, li) => {
    inputs.push(h);
    const pre = new Float64Array(batch * l.outF);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < l.outF; j++) {
        let s = l.b[j]!;
        for (let i = 0; i < l.inF; i++) s += h[r * l.inF + i]! * l.w[j * l.inF + i]!;
        pre[r * l.outF + j] = s;
      }
    }
    pres.push(pre);
    h = li < o.layers.length - 1 ? activationForwardRef(o.activation, pre) : pre;
  });
  // Softmax cross-entropy, mean over the batch.
  let loss = 0;
  let d: Float64Array = new Float64Array(batch * o.classes);
  for (let r = 0; r < batch; r++) {
    const z = h.subarray(r * o.classes, (r + 1) * o.classes);
    const max = Math.max(...z);
    const sum = z.reduce((s, zi) => s + Math.exp(zi - max), 0);
    const lse = max + Math.log(sum);
    const y1 = o.labels[rows[r]!]!;
    const y2 = o.labels[rows[batch - 1 - r]!]!;
    // q = λ·smooth(y1) + (1 − λ)·smooth(y2); loss = −Σ q_k log p_k.
    const q = (k: number) =>
      lambda * ((1 - smoothing) * (k === y1 ? 1 : 0) + smoothing / o.classes) +
      (1 - lambda) * ((1 - smoothing) * (k === y2 ? 1 : 0) + smoothing / o.classes);
    for (let k = 0; k < o.classes; k++) {
      loss -= q(k) * (z[k]! - lse);
      d[r * o.classes + k] = (Math.exp(z[k]! - lse) - q(k)) / batch;
    }
  }
  // Backward.
  const grads = o.layers.flatMap((
    l,
  ) => [new Float64Array(l.w.length), new Float64Array(l.b.length)]);
  for (let li = o.layers.length - 1; li >= 0; li--) {
    const l = o.layers[li]!;
    if (li < o.layers.length - 1) {
      const pre = pres[li]!;
      d = d.map((g, i) => g * activationDerivativeRef(o.activation, pre[i]!));
    }
    const x = inputs[li]!;
    const gw = grads[2 * li]!;
    const gb = grads[2 * li + 1]!;
    const dx = new Float64Array(batch * l.inF);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < l.outF; j++) {
        const g = d[r * l.outF + j]!;
        gb[j] = gb[j]! + g;
        for (let i = 0; i < l.inF; i++) {
          gw[j * l.inF + i] = gw[j * l.inF + i]! + g * x[r * l.inF + i]!;
          dx[r * l.inF + i] = dx[r * l.inF + i]! + g * l.w[j * l.inF + i]!;
        }
      }
    }
    d = dx;
  }
  return { loss: loss / batch, grads };
}

/** Runs `steps` AdamW steps; returns the mean loss of each step's batch (before its update). */
export function referenceLosses(o: RefTrainerOptions, steps: number): number[] {
  const params = o.layers.flatMap((l) => [{ v: l.w, decay: true }, { v: l.b, decay: false }]);
  const m = params.map((p) => new Float64Array(p.v.length));
  const v = params.map((p) => new Float64Array(p.v.length));
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const rows = Array.from({ length: o.batch }, (_, r) => o.order[step * o.batch + r]!);
    const lambda = o.mixupLambdas ? o.mixupLambdas[step]! : 1;
    const { loss, grads } = refLossAndGrads(o, rows, lambda, o.labelSmoothing ?? 0);
    losses.push(loss);
    // AdamW (torch.optim.AdamW).
    const t = step + 1;
    const lr = o.lrs[step]!;
    params.forEach((p, pi) => {
      for (let i = 0; i < p.v.length; i++) {
        const g = grads[pi]![i]!;
        if (p.decay) p.v[i] = p.v[i]! * (1 - lr * o.weightDecay);
        m[pi]![i] = o.beta1 * m[pi]![i]! + (1 - o.beta1) * g;
        v[pi]![i] = o.beta2 * v[pi]![i]! + (1 - o.beta2) * g * g;
        const mHat = m[pi]![i]! / (1 - o.beta1 ** t);
        const vHat = v[pi]![i]! / (1 - o.beta2 ** t);
        p.v[i] = p.v[i]! - lr * mHat / (Math.sqrt(vHat) + o.eps);
      }
    });
  }
  return losses;
}
