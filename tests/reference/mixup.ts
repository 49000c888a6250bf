/** Float64 reference of `wgsl/mixup.wgsl`: pair row r with row B−1−r. */

/** The mixed batch and the partner labels. */
export function mixupRef(
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  batch: number,
  features: number,
  lambda: number,
): { x: Float64Array; labels2: number[] } {
  const out = new Float64Array(batch * features);
  const labels2: number[] = [];
  for (let r = 0; r < batch; r++) {
    const q = batch - 1 - r;
    labels2.push(labels[q]!);
    for (let j = 0; j < features; j++) {
      out[r * features + j] = lambda * x[r * features + j]! + (1 - lambda) * x[q * features + j]!;
    }
  }
  return { x: out, labels2 };
}
