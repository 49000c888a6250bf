/**
 * Float64 references of `wgsl/normal.wgsl`: the same Philox words and the same Box–Muller
 * transform, evaluated in float64 from the float32 uniforms the kernel sees.
 */

import { philoxUniform, philoxWord } from "./philox.ts";

/** A random stream (seed, stream) at `step`. */
export interface FillKey {
  seed: number;
  stream: number;
  step: number;
}

/**
 * u_i = philox_uniform(word i) as the kernel holds it, in float32: (k + 0.5)/2^24 rounds to f32
 * for k ≥ 2^23 (and to exactly 1 for k = 2^24 − 1).
 */
export function uniformWords(n: number, key: FillKey): Float64Array {
  return Float64Array.from(
    { length: n },
    (_, i) => Math.fround(philoxUniform(philoxWord(key.seed, key.stream, key.step, i))),
  );
}

/**
 * mean + std·z with z_{2k} = r·cos θ, z_{2k+1} = r·sin θ, r = sqrt(−2 ln u_{2k}),
 * θ = 2π(u_{2k+1} − 1/2).
 */
export function normalFillRef(n: number, key: FillKey, mean: number, std: number): Float64Array {
  const u = uniformWords(n + (n % 2), key);
  const out = new Float64Array(n);
  for (let k = 0; 2 * k < n; k++) {
    const r = Math.sqrt(-2 * Math.log(u[2 * k]!));
    const theta = 2 * Math.PI * (u[2 * k + 1]! - 0.5);
    out[2 * k] = mean + std * r * Math.cos(theta);
    if (2 * k + 1 < n) out[2 * k + 1] = mean + std * r * Math.sin(theta);
  }
  return out;
}

/** low + (high − low)·u_i. */
export function uniformFillRef(n: number, key: FillKey, low: number, high: number): Float64Array {
  return uniformWords(n, key).map((u) => low + (high - low) * u);
}

/** A segment of a flat buffer: [start, end) and its std multiplier (the segment table's lr_mult). */
export interface NoiseSegment {
  start: number;
  end: number;
  lrMult: number;
}

/**
 * `before` with std·lrMult·z_i added to every element i of each segment (z: {@link normalFillRef}
 * of the whole buffer at `key`, so an element's deviate depends on its index only).
 */
export function normalAddRef(
  before: ArrayLike<number>,
  key: FillKey,
  std: number,
  segments: readonly NoiseSegment[],
): Float64Array {
  const z = normalFillRef(before.length, key, 0, 1);
  const out = Float64Array.from(before);
  for (const s of segments) {
    for (let i = s.start; i < s.end; i++) out[i] = out[i]! + std * s.lrMult * z[i]!;
  }
  return out;
}
