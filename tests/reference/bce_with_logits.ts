/**
 * Float64 reference of `wgsl/bce_with_logits.wgsl`, written as the formulas of
 * shared/specs/algorithms.md §9.2 (the kernel evaluates an equivalent form).
 */

/** Options of {@link bceWithLogitsRef}. */
export interface BceRefOptions {
  /** Default 1 (plain BCE). */
  posWeight?: number;
  /** Default 1/validCount. */
  gradScale?: number;
  /** Default n. */
  validCount?: number;
}

/** σ(x) = 1/(1 + e^{−x}) for x ≥ 0 and eˣ/(1 + eˣ) for x < 0. */
export function sigmoidRef(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Elementwise loss and the scaled gradient ∂loss/∂x. */
export function bceWithLogitsRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  options: BceRefOptions = {},
): { loss: Float64Array; grad: Float64Array } {
  const n = logits.length;
  const w = options.posWeight ?? 1;
  const validCount = options.validCount ?? n;
  const scale = options.gradScale ?? (validCount > 0 ? 1 / validCount : 0);
  const loss = new Float64Array(n);
  const grad = new Float64Array(n);
  for (let i = 0; i < validCount; i++) {
    const x = logits[i]!;
    const y = targets[i]!;
    if (w === 1) {
      loss[i] = Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
      grad[i] = scale * (sigmoidRef(x) - y);
    } else {
      loss[i] = (1 - y) * x +
        (1 + (w - 1) * y) * (Math.log1p(Math.exp(-Math.abs(x))) + Math.max(-x, 0));
      grad[i] = scale * (-w * y * (1 - sigmoidRef(x)) + (1 - y) * sigmoidRef(x));
    }
  }
  return { loss, grad };
}
