/** Per-channel statistics of uint8 images, for normalisation in the gather kernel. */

/**
 * Mean and standard deviation of byte/255 per channel of channel-major rows of `channels` planes
 * of `plane` pixels each, exact (from a histogram of each channel's bytes).
 */
export function pixelStats(
  images: Uint8Array,
  channels: number,
  plane: number,
): { mean: number[]; std: number[] } {
  const histograms = Array.from({ length: channels }, () => new Float64Array(256));
  const row = channels * plane;
  for (let start = 0; start + row <= images.length; start += row) {
    for (let c = 0; c < channels; c++) {
      const h = histograms[c]!;
      const end = start + (c + 1) * plane;
      for (let i = start + c * plane; i < end; i++) h[images[i]!]!++;
    }
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (const h of histograms) {
    let n = 0;
    let s = 0;
    for (let v = 0; v < 256; v++) {
      n += h[v]!;
      s += h[v]! * v;
    }
    const m = s / Math.max(1, n);
    let q = 0;
    for (let v = 0; v < 256; v++) q += h[v]! * (v - m) * (v - m);
    const sd = Math.sqrt(q / Math.max(1, n));
    mean.push(m / 255);
    // A channel with one value has no spread: std 1 keeps the values finite.
    std.push(sd > 0 ? sd / 255 : 1);
  }
  return { mean, std };
}
