/**
 * The CPU-side seeded generator (mulberry32) behind initialisation, epoch permutations, mixup λ
 * and synthetic data, so a run is a function of its seed. GPU-side randomness is Philox
 * (`wgsl/philox.wgsl`).
 *
 * @module
 */

/** A generator of uniform numbers in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
