/** Philox 4x32-10 on the CPU (exact integer arithmetic), the reference for `wgsl/philox.wgsl`. */

const M0 = 0xD2511F53n;
const M1 = 0xCD9E8D57n;
const W0 = 0x9E3779B9;
const W1 = 0xBB67AE85;
const MASK = 0xFFFFFFFFn;

/** Philox4x32 with 10 rounds: 4 counter words and 2 key words → 4 random words. */
export function philox4x32(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let round = 0; round < 10; round++) {
    const p0 = M0 * BigInt(c0);
    const p1 = M1 * BigInt(c2);
    const hi0 = Number(p0 >> 32n);
    const lo0 = Number(p0 & MASK);
    const hi1 = Number(p1 >> 32n);
    const lo1 = Number(p1 & MASK);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The word of element `index` in stream (seed, stream) at `step`, as `philox_word` in WGSL. */
export function philoxWord(seed: number, stream: number, step: number, index: number): number {
  return philox4x32([index >>> 2, step, 0, 0], [seed, stream])[index & 3]!;
}

/** A uniform float in (0, 1) from the top 24 bits, as `philox_uniform` in WGSL. */
export function philoxUniform(bits: number): number {
  return ((bits >>> 8) + 0.5) / 16777216;
}
