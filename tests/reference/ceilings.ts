/** Float64 references of the ceiling probes `wgsl/fma_peak.wgsl` and `wgsl/copy.wgsl`. */

/** What invocation i of the FMA probe writes: the sum of its 8 × 4 recurrences after `iterations`. */
export function fmaPeakRef(
  invocations: number,
  iterations: number,
  b: number,
  c: number,
): Float64Array {
  const out = new Float64Array(invocations);
  for (let i = 0; i < invocations; i++) {
    const x0 = i / invocations;
    let sum = 0;
    for (let j = 0; j < 8; j++) {
      for (const offset of [0, 0.25, 0.5, 0.75]) {
        let acc = x0 + j + offset;
        for (let t = 0; t < iterations; t++) acc = acc * b + c;
        sum += acc;
      }
    }
    out[i] = sum;
  }
  return out;
}
