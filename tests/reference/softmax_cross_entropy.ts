/**
 * Float64 reference of `wgsl/softmax_cross_entropy.wgsl` (shared/specs/algorithms.md §9.1),
 * written from the definitions: log p = z − lse, q = (1 − ε)·onehot(y) + ε/K, L = −Σ q log p.
 */

/** Options of {@link softmaxCrossEntropyRef}. */
export interface SceRefOptions {
  labelSmoothing?: number;
  /** Default 1/validRows. */
  gradScale?: number;
  /** Default rows. */
  validRows?: number;
  mixup?: { labels2: ArrayLike<number>; lambda: number };
}

/** Per-row loss, correct flag (1/0) and the scaled gradient. */
export interface SceRefResult {
  loss: Float64Array;
  correct: Float64Array;
  grad: Float64Array;
}

/** Index of the largest value, the lowest index on ties. */
export function argmaxRef(z: ArrayLike<number>, start: number, count: number): number {
  let best = 0;
  for (let k = 1; k < count; k++) if (z[start + k]! > z[start + best]!) best = k;
  return best;
}

/** The smoothed one-hot target of one label, added into `q` with weight `w`. */
function addTarget(q: Float64Array, label: number, eps: number, w: number): void {
  const k = q.length;
  for (let j = 0; j < k; j++) q[j]! += w * (eps / k + (j === label ? 1 - eps : 0));
}

/** Softmax cross-entropy of logits[rows·classes] against labels, with its gradient. */
export function softmaxCrossEntropyRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  classes: number,
  options: SceRefOptions = {},
): SceRefResult {
  const eps = options.labelSmoothing ?? 0;
  const validRows = options.validRows ?? rows;
  const scale = options.gradScale ?? (validRows > 0 ? 1 / validRows : 0);
  const loss = new Float64Array(rows);
  const correct = new Float64Array(rows);
  const grad = new Float64Array(rows * classes);
  for (let r = 0; r < validRows; r++) {
    const base = r * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[base + k]!);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(logits[base + k]! - max);
    const lse = max + Math.log(sum);
    const q = new Float64Array(classes);
    if (options.mixup) {
      const lambda = options.mixup.lambda;
      addTarget(q, labels[r]!, eps, lambda);
      addTarget(q, options.mixup.labels2[r]!, eps, 1 - lambda);
    } else {
      addTarget(q, labels[r]!, eps, 1);
    }
    let l = 0;
    for (let k = 0; k < classes; k++) {
      const logP = logits[base + k]! - lse;
      l -= q[k]! * logP;
      grad[base + k] = (Math.exp(logP) - q[k]!) * scale;
    }
    loss[r] = l;
    correct[r] = argmaxRef(logits, base, classes) === labels[r] ? 1 : 0;
  }
  return { loss, correct, grad };
}
