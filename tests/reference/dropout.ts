/**
 * Float64 references of `wgsl/dropout.wgsl`: the Philox mask, inverted dropout and alpha dropout,
 * forward and backward.
 */

import { philoxUniform, philoxWord } from "./philox.ts";

/** α' = −λα, the value SELU saturates to, which alpha dropout gives dropped units. */
export const ALPHA_PRIME = -1.7580993408473766;

/** The key of a dropout mask: the stream (seed, stream) at `step`. */
export interface MaskKey {
  seed: number;
  stream: number;
  step: number;
}

/**
 * keep[i] = 1 when element i is kept: philox_uniform(word i) ≥ p, both compared as the kernel
 * sees them, in float32 (the uniform's 25-bit value (k + 0.5)/2^24 rounds to f32 for k ≥ 2^23).
 */
export function dropoutMaskRef(n: number, p: number, key: MaskKey): Uint8Array {
  const p32 = Math.fround(p);
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.fround(philoxUniform(philoxWord(key.seed, key.stream, key.step, i)));
    keep[i] = u >= p32 ? 1 : 0;
  }
  return keep;
}

/** The affine map (a, b) of alpha dropout: a = ((1−p)(1+p·α'²))^{−1/2}, b = −a·α'·p. */
export function alphaDropoutAffine(p: number): { a: number; b: number } {
  const a = 1 / Math.sqrt((1 - p) * (1 + p * ALPHA_PRIME * ALPHA_PRIME));
  return { a, b: -a * ALPHA_PRIME * p };
}

/** y = keep ? x/(1−p) : 0. */
export function dropoutForwardRef(
  x: ArrayLike<number>,
  keep: ArrayLike<number>,
  p: number,
): Float64Array {
  return Float64Array.from(x, (v, i) => keep[i] ? v / (1 - p) : 0);
}

/** dx = keep ? dy/(1−p) : 0, added to `acc` when given. */
export function dropoutBackwardRef(
  dy: ArrayLike<number>,
  keep: ArrayLike<number>,
  p: number,
  acc?: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(dy, (g, i) => (keep[i] ? g / (1 - p) : 0) + (acc ? acc[i]! : 0));
}

/** y = a·(keep ? x : α') + b. */
export function alphaDropoutForwardRef(
  x: ArrayLike<number>,
  keep: ArrayLike<number>,
  p: number,
): Float64Array {
  const { a, b } = alphaDropoutAffine(p);
  return Float64Array.from(x, (v, i) => a * (keep[i] ? v : ALPHA_PRIME) + b);
}

/** dx = keep ? a·dy : 0, added to `acc` when given. */
export function alphaDropoutBackwardRef(
  dy: ArrayLike<number>,
  keep: ArrayLike<number>,
  p: number,
  acc?: ArrayLike<number>,
): Float64Array {
  const { a } = alphaDropoutAffine(p);
  return Float64Array.from(dy, (g, i) => (keep[i] ? a * g : 0) + (acc ? acc[i]! : 0));
}
