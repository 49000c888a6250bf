/** Float64 reference of `wgsl/gather.wgsl` (and of the byte packing it reads). */

/** Byte j of the flat data packed 4 per u32, little-endian. */
export function unpackByte(words: ArrayLike<number>, j: number): number {
  return (words[Math.floor(j / 4)]! >>> (8 * (j % 4))) & 0xFF;
}

/** What one gather reads. */
export interface GatherRefArgs {
  /** The dataset, rows of `rowBytes` bytes, unpacked. */
  data: Uint8Array;
  /** One label byte per row. */
  labels: Uint8Array;
  indices: ArrayLike<number>;
  /** Entries of `indices` that are valid. */
  indexCount: number;
  /** Position in `indices` of batch row 0. */
  start: number;
  batch: number;
  rowBytes: number;
  channels: number;
  mean: readonly number[];
  std: readonly number[];
}

/**
 * x[r, j] = (data[row·D + j]/255 − mean_c)/std_c, c = j / (D/channels), and y[r] = labels[row]
 * with row = indices[start + r]; zero when start + r ≥ indexCount.
 */
export function gatherRef(a: GatherRefArgs): { x: Float64Array; y: Uint32Array } {
  const d = a.rowBytes;
  const plane = d / a.channels;
  const x = new Float64Array(a.batch * d);
  const y = new Uint32Array(a.batch);
  for (let r = 0; r < a.batch; r++) {
    const position = a.start + r;
    if (position >= a.indexCount) continue;
    const row = a.indices[position]!;
    for (let j = 0; j < d; j++) {
      const c = Math.floor(j / plane);
      x[r * d + j] = (a.data[row * d + j]! / 255 - a.mean[c]!) / a.std[c]!;
    }
    y[r] = a.labels[row]!;
  }
  return { x, y };
}
