/** Seeded random inputs for tests: never all zeros or ones, reproducible from a seed. */

import { seededRandom } from "../../core/util/random.ts";

/** A seeded generator of uniform numbers in [0, 1): the project's own (core/random.ts). */
export const rng = seededRandom;

/** `n` uniform values in [lo, hi) as float32. */
export function uniformF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** `n` standard normal values (Box–Muller) scaled by `std`, as float32. */
export function normalF32(n: number, seed: number, std = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - next();
    const v = next();
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** `n` integers in [0, k). */
export function integers(n: number, k: number, seed: number): Uint32Array {
  const next = rng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * k);
  return out;
}

/** Widens float32 values to float64 for a reference computation. */
export function f64(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values);
}
