/** Float64 reference of `wgsl/image_view.wgsl`: a shifted, flipped view with zero fill. */

/** The raw view: out(r, c, y, x) = raw(r, c, y + dy, x' + dx), x' = flip ? W − 1 − x : x. */
export function imageViewRef(
  raw: ArrayLike<number>,
  batch: number,
  image: { channels: number; height: number; width: number },
  view: { dy: number; dx: number; flip: boolean },
): Float64Array {
  const { channels, height, width } = image;
  const out = new Float64Array(batch * channels * height * width);
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const sy = y + view.dy;
          const sx = (view.flip ? width - 1 - x : x) + view.dx;
          const inside = sy >= 0 && sx >= 0 && sy < height && sx < width;
          out[((r * channels + c) * height + y) * width + x] = inside
            ? raw[((r * channels + c) * height + sy) * width + sx]!
            : 0;
        }
      }
    }
  }
  return out;
}
