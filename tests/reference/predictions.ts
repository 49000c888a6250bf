/** Float64 references of `wgsl/predictions.wgsl`: confusion counts, binary scores. */

/** The prediction of a row: z > 0 for one logit, else the first index of the largest. */
export function predictRef(logits: ArrayLike<number>, row: number, width: number): number {
  if (width === 1) return logits[row]! > 0 ? 1 : 0;
  let best = 0;
  for (let k = 1; k < width; k++) {
    if (logits[row * width + k]! > logits[row * width + best]!) best = k;
  }
  return best;
}

/** counts[label·K + prediction] over the first `rows` rows, labels ≥ K in counts[K²]. */
export function confusionRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  width: number,
  classes: number,
): number[] {
  const counts = new Array(classes * classes + 1).fill(0);
  for (let r = 0; r < rows; r++) {
    const y = labels[r]!;
    if (y < classes) counts[y * classes + predictRef(logits, r, width)]++;
    else counts[classes * classes]++;
  }
  return counts;
}

/** The binary score of a row: its logit (width 1) or z₁ − z₀ (width 2). */
export function scoreRef(logits: ArrayLike<number>, row: number, width: number): number {
  return width === 1 ? logits[row]! : logits[row * 2 + 1]! - logits[row * 2]!;
}
