/** Reference of `wgsl/gather.wgsl` (and of the byte packing it reads). */

import { philox4x32, philoxUniform } from "./philox.ts";

/** Byte j of the flat data packed 4 per u32, little-endian. */
export function unpackByte(words: ArrayLike<number>, j: number): number {
  return (words[Math.floor(j / 4)]! >>> (8 * (j % 4))) & 0xFF;
}

/** The augmentation of one reference gather (see GatherAugment in core/ops/gather.ts). */
export interface AugmentRef {
  channels: number;
  height: number;
  width: number;
  padding: number;
  flip: number;
  resized?: { scale: readonly [number, number]; ratio: readonly [number, number] };
  seed: number;
  stream: number;
  /** The step the draws are keyed by (the value of the counter the kernel reads). */
  step: number;
}

/** What one gather reads. */
export interface GatherRefArgs {
  /** The dataset, rows of `features` values (bytes, or f32 values with `float`), unpacked. */
  data: ArrayLike<number>;
  float?: boolean;
  /** One label per split position. */
  labels: ArrayLike<number>;
  indices: ArrayLike<number>;
  /** Entries of `indices` that are valid. */
  indexCount: number;
  /** Position in `indices` of batch row 0. */
  start: number;
  batch: number;
  features: number;
  mean: readonly number[];
  std: readonly number[];
  /** Streaming: the rows of each chunk in order, chunk q / chunkRows (rows of `data` ignored). */
  chunks?: ArrayLike<number>[];
  chunkRows?: number;
  augment?: AugmentRef;
}

/** Python's round(): half to even. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const f = Math.fround;

/**
 * torchvision's RandomResizedCrop.get_params as the kernel computes it (f32 arithmetic, Philox
 * words (r, step, k, 0)): [top, left, height, width].
 */
export function resizedBoxRef(a: AugmentRef, r: number): [number, number, number, number] {
  const { height: hh, width: ww } = a;
  const [s0, s1] = a.resized!.scale.map(f) as [number, number];
  const [r0, r1] = a.resized!.ratio.map(f) as [number, number];
  const [l0, l1] = a.resized!.ratio.map((v) => f(Math.log(v))) as [number, number];
  const area = f(hh * ww);
  for (let k = 1; k <= 10; k++) {
    const w = philox4x32([r, a.step, k, 0], [a.seed, a.stream]);
    const fraction = f(s0 + f(f(s1 - s0) * f(philoxUniform(w[0]!))));
    const target = f(area * fraction);
    const aspect = l1 > l0 ? f(Math.exp(f(l0 + f(f(l1 - l0) * f(philoxUniform(w[1]!)))))) : r0;
    const bw = roundHalfEven(f(Math.sqrt(f(target * aspect))));
    const bh = roundHalfEven(f(Math.sqrt(f(target / aspect))));
    if (bw >= 1 && bw <= ww && bh >= 1 && bh <= hh) {
      return [w[2]! % (hh - bh + 1), w[3]! % (ww - bw + 1), bh, bw];
    }
  }
  const inRatio = f(ww / hh);
  let bw = ww;
  let bh = hh;
  if (inRatio < r0) bh = Math.min(hh, Math.max(1, roundHalfEven(f(bw / r0))));
  else if (inRatio > r1) bw = Math.min(ww, Math.max(1, roundHalfEven(f(bh * r1))));
  return [Math.trunc((hh - bh) / 2), Math.trunc((ww - bw) / 2), bh, bw];
}

/**
 * The augmented image of one row as the kernel defines it (values before normalisation): the
 * random crop with padding, the flip and the resized crop's bilinear resampling. Crop and flip
 * only move values, so they are exact; the resampling is computed in float64.
 */
export function augmentRowRef(
  image: (j: number) => number,
  a: AugmentRef,
  r: number,
): Float64Array {
  const { channels, height: hh, width: ww, padding: pad } = a;
  const w = philox4x32([r, a.step, 0, 0], [a.seed, a.stream]);
  const dy = (w[0]! % (2 * pad + 1)) - pad;
  const dx = (w[1]! % (2 * pad + 1)) - pad;
  const flip = philoxUniform(w[2]!) < f(a.flip);
  const box = a.resized ? resizedBoxRef(a, r) : [0, 0, hh, ww];
  const [top, left, bh, bw] = box as [number, number, number, number];
  const padded = (c: number, y: number, x: number) => {
    const iy = y + dy;
    const ix = x + dx;
    return iy < 0 || ix < 0 || iy >= hh || ix >= ww ? 0 : image((c * hh + iy) * ww + ix);
  };
  const out = new Float64Array(channels * hh * ww);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < hh; y++) {
      for (let x0 = 0; x0 < ww; x0++) {
        const x = flip ? ww - 1 - x0 : x0;
        let v: number;
        if (!a.resized) {
          v = padded(c, y, x);
        } else {
          const sy = Math.max((y + 0.5) * (bh / hh) - 0.5, 0);
          const sx = Math.max((x + 0.5) * (bw / ww) - 0.5, 0);
          const y0 = Math.trunc(sy);
          const xx0 = Math.trunc(sx);
          const y1 = y0 + (y0 < bh - 1 ? 1 : 0);
          const xx1 = xx0 + (xx0 < bw - 1 ? 1 : 0);
          const ly = sy - y0;
          const lx = sx - xx0;
          const upper = (1 - lx) * padded(c, top + y0, left + xx0) +
            lx * padded(c, top + y0, left + xx1);
          const lower = (1 - lx) * padded(c, top + y1, left + xx0) +
            lx * padded(c, top + y1, left + xx1);
          v = (1 - ly) * upper + ly * lower;
        }
        out[(c * hh + y) * ww + x0] = v;
      }
    }
  }
  return out;
}

/**
 * x[r, j] = (v/255 − mean_s)/std_s (bytes) or (v − mean_s)/std_s (floats), s = j / (D/S), with v
 * value j of the row at position start + r (augmented when asked), and y[r] = labels[indices[q]];
 * zero when start + r ≥ indexCount.
 */
export function gatherRef(a: GatherRefArgs): { x: Float64Array; y: Uint32Array } {
  const d = a.features;
  const plane = d / a.mean.length;
  const unit = a.float ? 1 : 1 / 255;
  const x = new Float64Array(a.batch * d);
  const y = new Uint32Array(a.batch);
  for (let r = 0; r < a.batch; r++) {
    const position = a.start + r;
    if (position >= a.indexCount) continue;
    const id = a.indices[position]!;
    let value = (j: number) => a.data[id * d + j]!;
    if (a.chunks) {
      const k = Math.floor(position / a.chunkRows!);
      const local = position - k * a.chunkRows!;
      const chunk = a.chunks[k]!;
      value = (j) => chunk[local * d + j]!;
    }
    const row = a.augment ? augmentRowRef(value, a.augment, r) : undefined;
    for (let j = 0; j < d; j++) {
      const s = Math.floor(j / plane);
      const v = row ? row[j]! : value(j);
      x[r * d + j] = (v * unit - a.mean[s]!) / a.std[s]!;
    }
    y[r] = a.labels[id]!;
  }
  return { x, y };
}
