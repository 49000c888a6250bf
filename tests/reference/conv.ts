/**
 * Float64 references of the convolution and pooling kernels (wgsl/im2col.wgsl,
 * wgsl/max_pool.wgsl), written from their definitions rather than from the kernels' index
 * arithmetic: a direct k×k convolution over NCHW images (PyTorch's `F.conv2d`, stride 1), im2col
 * and col2im, and 2-D max-pooling of channels-last images with its backward.
 */

import type { ImageLayout } from "../../core/ops/conv.ts";

/** A batch of images' shape and where element (b, c, y, x) lives. */
export interface ImageShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
  layout: ImageLayout;
}

/** Flat index of (b, c, y, x) under the layout. */
export function imageIndex(s: ImageShape, b: number, c: number, y: number, x: number): number {
  return s.layout === "nchw"
    ? ((b * s.channels + c) * s.height + y) * s.width + x
    : ((b * s.height + y) * s.width + x) * s.channels + c;
}

/**
 * y[b, oy, ox, o] = bias[o] + Σ_{c,ky,kx} w[o, c, ky, kx]·x[b, c, oy + ky − pad, ox + kx − pad]
 * (zeros outside), channels-last output [B, OH, OW, O].
 */
export function conv2dRef(
  x: ArrayLike<number>,
  s: ImageShape,
  w: ArrayLike<number>,
  out: number,
  k: number,
  pad: number,
  bias?: ArrayLike<number>,
): Float64Array {
  const oh = s.height + 2 * pad - k + 1, ow = s.width + 2 * pad - k + 1;
  const y = new Float64Array(s.batch * oh * ow * out);
  for (let b = 0; b < s.batch; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let o = 0; o < out; o++) {
          let acc = bias ? bias[o]! : 0;
          for (let c = 0; c < s.channels; c++) {
            for (let ky = 0; ky < k; ky++) {
              for (let kx = 0; kx < k; kx++) {
                const iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || ix < 0 || iy >= s.height || ix >= s.width) continue;
                acc += w[((o * s.channels + c) * k + ky) * k + kx]! *
                  x[imageIndex(s, b, c, iy, ix)]!;
              }
            }
          }
          y[((b * oh + oy) * ow + ox) * out + o] = acc;
        }
      }
    }
  }
  return y;
}

/** cols[(b, oy, ox), (c, ky, kx)] = x[b, c, oy + ky − pad, ox + kx − pad] (zeros outside). */
export function im2colRef(x: ArrayLike<number>, s: ImageShape, k: number, pad: number) {
  const oh = s.height + 2 * pad - k + 1, ow = s.width + 2 * pad - k + 1;
  const width = s.channels * k * k;
  const cols = new Float64Array(s.batch * oh * ow * width);
  for (let b = 0; b < s.batch; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const row = (b * oh + oy) * ow + ox;
        for (let c = 0; c < s.channels; c++) {
          for (let ky = 0; ky < k; ky++) {
            for (let kx = 0; kx < k; kx++) {
              const iy = oy + ky - pad, ix = ox + kx - pad;
              const inside = iy >= 0 && ix >= 0 && iy < s.height && ix < s.width;
              cols[row * width + (c * k + ky) * k + kx] = inside
                ? x[imageIndex(s, b, c, iy, ix)]!
                : 0;
            }
          }
        }
      }
    }
  }
  return cols;
}

/** The adjoint of {@link im2colRef}: every column entry added back to the pixel it came from. */
export function col2imRef(dcols: ArrayLike<number>, s: ImageShape, k: number, pad: number) {
  const oh = s.height + 2 * pad - k + 1, ow = s.width + 2 * pad - k + 1;
  const width = s.channels * k * k;
  const dx = new Float64Array(s.batch * s.channels * s.height * s.width);
  for (let b = 0; b < s.batch; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const row = (b * oh + oy) * ow + ox;
        for (let c = 0; c < s.channels; c++) {
          for (let ky = 0; ky < k; ky++) {
            for (let kx = 0; kx < k; kx++) {
              const iy = oy + ky - pad, ix = ox + kx - pad;
              if (iy < 0 || ix < 0 || iy >= s.height || ix >= s.width) continue;
              const at = imageIndex(s, b, c, iy, ix);
              dx[at] = dx[at]! + dcols[row * width + (c * k + ky) * k + kx]!;
            }
          }
        }
      }
    }
  }
  return dx;
}

/** Max-pooling of x [B, H, W, C] over size×size windows, stride size; and each window's argmax. */
export function maxPoolRef(
  x: ArrayLike<number>,
  batch: number,
  height: number,
  width: number,
  channels: number,
  size: number,
): { y: Float64Array; argmax: Int32Array } {
  const oh = Math.floor(height / size), ow = Math.floor(width / size);
  const y = new Float64Array(batch * oh * ow * channels);
  const argmax = new Int32Array(y.length);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let c = 0; c < channels; c++) {
          let best = -1, value = -Infinity;
          for (let wy = 0; wy < size; wy++) {
            for (let wx = 0; wx < size; wx++) {
              const at = ((b * height + oy * size + wy) * width + ox * size + wx) * channels + c;
              // The first maximum wins (strictly greater replaces it), as in PyTorch.
              if (x[at]! > value) {
                value = x[at]!;
                best = at;
              }
            }
          }
          const o = ((b * oh + oy) * ow + ox) * channels + c;
          y[o] = value;
          argmax[o] = best;
        }
      }
    }
  }
  return { y, argmax };
}

/** dx of max-pooling: each output's gradient at its window's (first) maximum, 0 elsewhere. */
export function maxPoolBackwardRef(
  dy: ArrayLike<number>,
  argmax: Int32Array,
  inputs: number,
): Float64Array {
  const dx = new Float64Array(inputs);
  for (let o = 0; o < argmax.length; o++) dx[argmax[o]!] = dx[argmax[o]!]! + dy[o]!;
  return dx;
}
