/** Float64 reference of `wgsl/reduce.wgsl`. */

/** Σx (or Σx² with `square`) over each segment x[offsets[s] .. offsets[s+1]). */
export function segmentSumRef(
  x: ArrayLike<number>,
  offsets: readonly number[],
  square = false,
): Float64Array {
  const out = new Float64Array(offsets.length - 1);
  for (let s = 0; s < out.length; s++) {
    let sum = 0;
    for (let i = offsets[s]!; i < offsets[s + 1]!; i++) sum += square ? x[i]! * x[i]! : x[i]!;
    out[s] = sum;
  }
  return out;
}

/** Σ|x| (or Σx²) per segment: the scale of the rounding error of a sum. */
export function segmentAbsSumRef(
  x: ArrayLike<number>,
  offsets: readonly number[],
  square = false,
): Float64Array {
  return segmentSumRef(Array.from(x, (v) => (square ? v : Math.abs(v))), offsets, square);
}
