/** Float64 references of the ceiling probes `wgsl/fma_peak.wgsl` and `wgsl/copy.wgsl`. */

/**
 * What invocation i of the FMA probe writes: the sum of its 8 × 4 recurrences after `iterations`.
 * `round` is the probe's compute type: the identity for f32 (compared with a tolerance), or
 * `Math.f16round` for f16, which rounds the start values, b and c, and each step once (`fused`,
 * default) or after the product and again after the sum (WGSL lets `fma` be either).
 */
export function fmaPeakRef(
  invocations: number,
  iterations: number,
  bIn: number,
  cIn: number,
  round: (x: number) => number = (x) => x,
  fused = true,
): Float64Array {
  const [b, c] = [round(bIn), round(cIn)];
  const out = new Float64Array(invocations);
  for (let i = 0; i < invocations; i++) {
    const x0 = i / invocations;
    let sum = 0;
    for (let j = 0; j < 8; j++) {
      for (const offset of [0, 0.25, 0.5, 0.75]) {
        let acc = round(Math.fround(x0 + j + offset));
        for (let t = 0; t < iterations; t++) {
          acc = fused ? round(acc * b + c) : round(round(acc * b) + c);
        }
        sum += acc;
      }
    }
    out[i] = sum;
  }
  return out;
}
