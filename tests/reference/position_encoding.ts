/**
 * Float64 reference of the position encoding (wgsl/position_encoding.wgsl): bits from the exact
 * integer position, and the phase frac(p·f) computed exactly with BigInt from f's binary
 * expansion (p·f as a float64 product would lose ~p·2^-53 turns), then sin/cos in float64.
 */

/** frac(p·f) exactly, for an integer p ≥ 0 (< 2^53) and a finite float64 f. */
export function exactPhase(p: number, f: number): number {
  if (f === 0 || p === 0) return 0;
  // f = mantissa · 2^exponent with an integer mantissa of at most 53 bits.
  let exponent = Math.floor(Math.log2(Math.abs(f))) - 52;
  let mantissa = Math.abs(f) / 2 ** exponent;
  while (!Number.isInteger(mantissa)) {
    exponent--;
    mantissa *= 2;
  }
  const product = BigInt(p) * BigInt(mantissa) * (f < 0 ? -1n : 1n);
  if (exponent >= 0) return 0;
  const denominator = 1n << BigInt(-exponent);
  let remainder = product % denominator;
  if (remainder < 0n) remainder += denominator;
  return Number(remainder) / Number(denominator);
}

/** The encoding of positions `p` (integers < 2^48): rows × features, float64. */
export function positionEncodingRef(
  positions: readonly number[],
  kind: "bits" | "sin" | "fourier",
  features: number,
  frequencies: ArrayLike<number> = [],
): Float64Array {
  const out = new Float64Array(positions.length * features);
  positions.forEach((p, r) => {
    for (let j = 0; j < features; j++) {
      let v: number;
      if (kind === "bits") {
        v = j < 48 && Math.floor(p / 2 ** j) % 2 === 1 ? 1 : -1;
      } else {
        const angle = 2 * Math.PI * exactPhase(p, frequencies[j >> 1]!);
        v = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
      }
      out[r * features + j] = v;
    }
  });
  return out;
}
