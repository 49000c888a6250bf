/**
 * Float64 references of `wgsl/activation.wgsl`: each activation f and its derivative f', with a
 * true erf (not the kernel's Abramowitz–Stegun approximation) so that the reference defines exact
 * GELU. Formulas: shared/specs/algorithms.md §9.3; SELU constants from Klambauer et al. 2017.
 */

import type { Activation } from "../../core/ops/activation_ids.ts";

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

/**
 * erf(x) = (2/√π)·e^{−x²}·Σ_{n≥0} 2ⁿx^{2n+1}/(1·3·…·(2n+1)) for |x| < 1.5: every term has the
 * sign of x, so nothing cancels and the sum is good to a few ulps.
 */
export function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return 2 * INV_SQRT_PI * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x ≥ 1.5 by the continued fraction e^{−x²}/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))),
 * evaluated bottom-up; 200 levels reach float64 precision at x = 1.5 (checked against glibc's
 * erfc) and it converges faster above. Used for the tails, where 1 − erf would cancel.
 */
export function erfcContinuedFraction(x: number): number {
  let f = x;
  for (let k = 200; k >= 1; k--) f = x + (k / 2) / f;
  return INV_SQRT_PI * Math.exp(-x * x) / f;
}

/** The error function to about 1e-16. */
export function erf(x: number): number {
  if (Math.abs(x) < 1.5) return erfSeries(x);
  const tail = erfcContinuedFraction(Math.abs(x));
  return x > 0 ? 1 - tail : tail - 1;
}

/** The complementary error function 1 − erf(x), accurate in the tails (x ≫ 0). */
export function erfc(x: number): number {
  if (Math.abs(x) < 1.5) return 1 - erfSeries(x);
  return x > 0 ? erfcContinuedFraction(x) : 2 - erfcContinuedFraction(-x);
}

/** Φ(x), the standard normal CDF, accurate in the left tail. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** σ(x) without overflow. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** f(x) of one activation. */
export function activationRef(name: Activation, x: number): number {
  switch (name) {
    case "identity":
      return x;
    case "relu":
      return Math.max(x, 0);
    case "gelu":
      return x * normalCdf(x);
    case "gelu_tanh":
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case "selu":
      return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    case "tanh":
      return Math.tanh(x);
    case "sigmoid":
      return sigmoid(x);
    case "silu":
      return x * sigmoid(x);
  }
}

/** f'(x) of one activation; at relu's and selu's kink x = 0 the left-hand value, as the kernel. */
export function activationDerivativeRef(name: Activation, x: number): number {
  switch (name) {
    case "identity":
      return 1;
    case "relu":
      return x > 0 ? 1 : 0;
    case "gelu":
      return normalCdf(x) + x * INV_SQRT_PI * Math.SQRT1_2 * Math.exp(-0.5 * x * x);
    case "gelu_tanh": {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 0.134145 * x * x);
    }
    case "selu":
      return SELU_SCALE * (x > 0 ? 1 : SELU_ALPHA * Math.exp(x));
    case "tanh": {
      const t = Math.tanh(x);
      return 1 - t * t;
    }
    case "sigmoid": {
      const s = sigmoid(x);
      return s * (1 - s);
    }
    case "silu": {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
  }
}

/** y = f(x) elementwise. */
export function activationForwardRef(name: Activation, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => activationRef(name, v));
}

/** dx = dy·f'(x) elementwise, plus `dxIn` when accumulating. */
export function activationBackwardRef(
  name: Activation,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  dxIn?: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(
    x,
    (v, i) => dy[i]! * activationDerivativeRef(name, v) + (dxIn ? dxIn[i]! : 0),
  );
}
