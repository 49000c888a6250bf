/**
 * Float64 references of `wgsl/drop_path.wgsl`: the per-row Philox mask and scale, and the forward
 * and backward products with it.
 */

import { philoxUniform, philoxWord } from "./philox.ts";
import type { MaskKey } from "./dropout.ts";

/**
 * scales[r] = keep_r ? 1/(1−p) : 0, keep_r when philox_uniform(word r) ≥ p, both compared as the
 * kernel sees them in float32; the scale as the f32 the kernel holds.
 */
export function dropPathScalesRef(rows: number, p: number, key: MaskKey): Float64Array {
  const p32 = Math.fround(p);
  const scale = Math.fround(1 / (1 - p));
  return Float64Array.from({ length: rows }, (_, r) => {
    const u = Math.fround(philoxUniform(philoxWord(key.seed, key.stream, key.step, r)));
    return u >= p32 ? scale : 0;
  });
}

/** y[r, c] = x[r, c] · scales[r] (and the backward dx = dy · scales[r], added to `acc`). */
export function dropPathRef(
  x: ArrayLike<number>,
  scales: ArrayLike<number>,
  acc?: ArrayLike<number>,
): Float64Array {
  const cols = x.length / scales.length;
  return Float64Array.from(
    x,
    (v, i) => v * scales[Math.floor(i / cols)]! + (acc ? acc[i]! : 0),
  );
}
