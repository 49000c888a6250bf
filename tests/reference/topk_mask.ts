/**
 * Float64 reference of `wgsl/topk_mask.wgsl`: the k largest scores among the candidates, ties to
 * the lower index, as a 0/1 mask; and the random score the kernel draws, rounded as f32 does.
 */

import { philoxWord } from "./philox.ts";

/** The mask of the `k` largest `scores[i]` over the candidate indices (all if fewer). */
export function topkMaskRef(
  scores: ArrayLike<number>,
  candidate: (i: number) => boolean,
  k: number,
): Uint8Array {
  const n = scores.length;
  const chosen = Array.from({ length: n }, (_, i) => i)
    .filter(candidate)
    .map((i) => ({ i, s: Math.max(scores[i]!, 0) }))
    .sort((a, b) => b.s - a.s || a.i - b.i)
    .slice(0, k);
  const mask = new Uint8Array(n);
  for (const { i } of chosen) mask[i] = 1;
  return mask;
}

/**
 * The kernel's random score of element `i`: `(f32(bits >> 8) + 0.5) · 2⁻²⁴` in f32 arithmetic
 * (the sum rounds to 24 bits).
 */
export function randomScoreRef(seed: number, stream: number, step: number, i: number): number {
  const bits = philoxWord(seed, stream, step, i);
  return Math.fround((bits >>> 8) + 0.5) / 16777216;
}
