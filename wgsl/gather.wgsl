// Batch gather: builds a normalised — and for training, augmented — batch and its labels from a
// dataset kept on the GPU, so a training step needs no CPU→GPU copy (DESIGN.md "GPU-resident
// data"). The dataset is resident whole, or streamed in chunks with double buffering.
//
// Samples are rows of D = features values: uint8 packed 4 per u32, little-endian (FLOAT_DATA
// false: byte j of the flat data is (data[j / 4] >> (8·(j % 4))) & 0xFF; rows straddle words when
// D % 4 ≠ 0), or f32 (FLOAT_DATA true: value j is bitcast<f32>(data[j])). Labels are one u32 per
// position of the split.
//
// Batch row r reads position q = cursor[cursor_index] · cursor_stride + r of the epoch's index
// list (read on the GPU, so one Dispatch serves every step: the trainer advances the cursor on the
// GPU); positions q ≥ count (the partial last batch) are masked: x = 0, label 0. The label is
// labels[indices[q]]. The sample is
//   resident (chunk_rows = 0): row indices[q] of data_a;
//   streamed (chunk_rows > 0): row q mod chunk_rows of data_a when q / chunk_rows is even, of
//     data_b when it is odd (the trainer writes chunk k of the epoch's rows, in order, into slot
//     k mod 2 while the other slot is in use).
//
// Normalisation: x[r, j] = v · scale[s] + shift[s], s = j / plane (plane = D / stat_count),
// scale[s] = stats[s], shift[s] = stats[stat_count + s]: per channel (plane = H·W), per feature
// (plane = 1) or one for all (plane = D); core/ops/gather.ts folds mean and std into them.
//
// Augmentation (AUGMENT true; images of channels × height × width, channel-major): for batch row
// r at step t = cursor[random_index], Philox words keyed by (seed, stream) with counter
// (r, t, k, 0):
//   k = 0: crop offsets dy = w.x mod (2·pad + 1), dx = w.y mod (2·pad + 1); flip when
//          philox_uniform(w.z) < flip_p;
//   k = 1..10 (resized = 1): the attempts of torchvision's RandomResizedCrop.get_params: area
//          H·W·(scale_lo + (scale_hi − scale_lo)·u(w.x)), aspect exp(log_ratio_lo + (…)·u(w.y))
//          (ratio_lo when the range is empty), box w = round(√(area·aspect)),
//          h = round(√(area/aspect)) (half to even, as Python), accepted when 1 ≤ w ≤ W and
//          1 ≤ h ≤ H, top = w.z mod (H − h + 1), left = w.w mod (W − w + 1); after 10 misses the
//          central crop of torchvision's fallback.
// Output pixel (c, y, x): x' = flip ? W − 1 − x : x; the padded crop is
// P(c, y, x) = image(c, y + dy − pad, x + dx − pad), 0 outside the image (the value before
// normalisation, as torchvision's RandomCrop(fill=0) on the unnormalised image); without the
// resized crop the pixel is P(c, y, x'), with it the bilinear sample (align_corners = false, as
// torch's interpolate) of the box of P at (y, x').
//
// Bindings:
//   0 data_a: array<u32> (resident data, or chunk slot 0), 1 data_b: array<u32> (chunk slot 1;
//   the same buffer as data_a when resident), 2 labels: array<u32> (split positions),
//   3 indices: array<u32> (≥ count), 4 cursor: array<u32> (the step counters, or an evaluator's
//   cursor), 5 stats: array<f32> (2·stat_count), 6 x: array<X_T> (batch·D; X_T f32 or f16,
//   core/kernels.ts withStorage), 7 y: array<u32> (batch), 8 params: uniform GatherParams
// Overrides: FLOAT_DATA (f32 samples), AUGMENT (crop, flip, resized crop).
// Dispatch: one workgroup of 64 per batch row, its lanes striding over the row's D values; with
// AUGMENT each lane draws the row's augmentation itself (the same words: 64 Philox evaluations
// per row cost less than a workgroup barrier on a CPU adapter, 2× faster on llvmpipe); `batch`
// workgroups split over x and y above 65535 (core/kernels.ts grid with size 1).

//!include philox

struct GatherParams {
  batch: u32,
  features: u32,
  plane: u32,
  stat_count: u32,
  cursor_index: u32,
  cursor_stride: u32,
  count: u32,
  chunk_rows: u32,
  channels: u32,
  height: u32,
  width: u32,
  pad: u32,
  seed: u32,
  stream: u32,
  random_index: u32,
  resized: u32,
  flip_p: f32,
  scale_lo: f32,
  scale_hi: f32,
  ratio_lo: f32,
  ratio_hi: f32,
  log_ratio_lo: f32,
  log_ratio_hi: f32,
  unused: u32,
}

override FLOAT_DATA: bool = false;
override AUGMENT: bool = false;

alias X_T = f32;

@group(0) @binding(0) var<storage, read> data_a: array<u32>;
@group(0) @binding(1) var<storage, read> data_b: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> indices: array<u32>;
@group(0) @binding(4) var<storage, read> cursor: array<u32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<X_T>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;
@group(0) @binding(8) var<uniform> params: GatherParams;

// The row's augmentation, drawn by each lane (a private copy: cheaper than a workgroup barrier on
// CPU adapters): (dy − pad, dx − pad, flip, 0) and the resized crop's box (top, left, h, w).
var<private> row_shift: vec4<i32>;
var<private> row_box: vec4<i32>;

// Value j of row `row` of the slot `slot` (0: data_a, 1: data_b), before normalisation.
fn sample_value(slot: u32, row: u32, j: u32) -> f32 {
  let flat = row * params.features + j;
  var word_index = flat >> 2u;
  if (FLOAT_DATA) {
    word_index = flat;
  }
  var word: u32;
  if (slot == 1u) {
    word = data_b[word_index];
  } else {
    word = data_a[word_index];
  }
  if (FLOAT_DATA) {
    return bitcast<f32>(word);
  }
  return f32((word >> (8u * (flat & 3u))) & 0xFFu);
}

// Pixel (c, py, px) of the padded crop P of the row's image; 0 outside the image.
fn padded_pixel(slot: u32, row: u32, c: i32, py: i32, px: i32) -> f32 {
  let h = i32(params.height);
  let w = i32(params.width);
  let iy = py + row_shift.x;
  let ix = px + row_shift.y;
  if (iy < 0 || ix < 0 || iy >= h || ix >= w) {
    return 0.0;
  }
  return sample_value(slot, row, u32((c * h + iy) * w + ix));
}

// torchvision's RandomResizedCrop.get_params for batch row r at step t: (top, left, h, w).
fn resized_box(r: u32, t: u32) -> vec4<i32> {
  let hh = i32(params.height);
  let ww = i32(params.width);
  let area = f32(params.height * params.width);
  for (var k = 1u; k <= 10u; k = k + 1u) {
    let words = philox4x32(vec4<u32>(r, t, k, 0u), vec2<u32>(params.seed, params.stream));
    let fraction = params.scale_lo + (params.scale_hi - params.scale_lo) * philox_uniform(words.x);
    let target_area = area * fraction;
    var aspect = params.ratio_lo;
    if (params.log_ratio_hi > params.log_ratio_lo) {
      let log_aspect = params.log_ratio_lo +
        (params.log_ratio_hi - params.log_ratio_lo) * philox_uniform(words.y);
      aspect = exp(log_aspect);
    }
    let bw = i32(round(sqrt(target_area * aspect)));
    let bh = i32(round(sqrt(target_area / aspect)));
    if (bw >= 1 && bw <= ww && bh >= 1 && bh <= hh) {
      let top = i32(words.z % u32(hh - bh + 1));
      let left = i32(words.w % u32(ww - bw + 1));
      return vec4<i32>(top, left, bh, bw);
    }
  }
  let in_ratio = f32(ww) / f32(hh);
  var bw = ww;
  var bh = hh;
  if (in_ratio < params.ratio_lo) {
    bh = clamp(i32(round(f32(bw) / params.ratio_lo)), 1, hh);
  } else if (in_ratio > params.ratio_hi) {
    bw = clamp(i32(round(f32(bh) * params.ratio_hi)), 1, ww);
  }
  return vec4<i32>((hh - bh) / 2, (ww - bw) / 2, bh, bw);
}

// The draw of row r's augmentation into this invocation's private copy.
fn draw_augmentation(r: u32) {
  let t = cursor[params.random_index];
  let words = philox4x32(vec4<u32>(r, t, 0u, 0u), vec2<u32>(params.seed, params.stream));
  let span = 2u * params.pad + 1u;
  let pad = i32(params.pad);
  let flip = select(0, 1, philox_uniform(words.z) < params.flip_p);
  row_shift = vec4<i32>(i32(words.x % span) - pad, i32(words.y % span) - pad, flip, 0);
  if (params.resized == 1u) {
    row_box = resized_box(r, t);
  } else {
    row_box = vec4<i32>(0, 0, i32(params.height), i32(params.width));
  }
}

// Output pixel (c, oy, ox) of the augmented image of row `row`, before normalisation.
fn augmented_value(slot: u32, row: u32, c: i32, oy: i32, pixel_x: i32) -> f32 {
  var ox = pixel_x;
  if (row_shift.z == 1) {
    ox = i32(params.width) - 1 - ox;
  }
  if (params.resized == 0u) {
    return padded_pixel(slot, row, c, oy, ox);
  }
  let bh = row_box.z;
  let bw = row_box.w;
  let sy = max((f32(oy) + 0.5) * (f32(bh) / f32(params.height)) - 0.5, 0.0);
  let sx = max((f32(ox) + 0.5) * (f32(bw) / f32(params.width)) - 0.5, 0.0);
  let y0 = i32(sy);
  let x0 = i32(sx);
  let y1 = y0 + select(0, 1, y0 < bh - 1);
  let x1 = x0 + select(0, 1, x0 < bw - 1);
  let ly = sy - f32(y0);
  let lx = sx - f32(x0);
  let top = row_box.x;
  let left = row_box.y;
  let upper = (1.0 - lx) * padded_pixel(slot, row, c, top + y0, left + x0) +
    lx * padded_pixel(slot, row, c, top + y0, left + x1);
  let lower = (1.0 - lx) * padded_pixel(slot, row, c, top + y1, left + x0) +
    lx * padded_pixel(slot, row, c, top + y1, left + x1);
  return (1.0 - ly) * upper + ly * lower;
}

@compute @workgroup_size(64)
fn gather_batch(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= params.batch) {
    return;
  }
  let d = params.features;
  let q = cursor[params.cursor_index] * params.cursor_stride + r;
  if (q >= params.count) {
    for (var j = lane; j < d; j = j + 64u) {
      x[r * d + j] = X_T(0.0);
    }
    if (lane == 0u) {
      y[r] = 0u;
    }
    return;
  }
  if (AUGMENT) {
    draw_augmentation(r);
  }
  let id = indices[q];
  var slot = 0u;
  var row = id;
  if (params.chunk_rows > 0u) {
    let chunk = q / params.chunk_rows;
    slot = chunk & 1u;
    row = q - chunk * params.chunk_rows;
  }
  if (AUGMENT) {
    let w = params.width;
    let hw = params.height * w;
    for (var j = lane; j < d; j = j + 64u) {
      let c = j / hw;
      let py = (j - c * hw) / w;
      let px = j - c * hw - py * w;
      let v = augmented_value(slot, row, i32(c), i32(py), i32(px));
      let s = j / params.plane;
      x[r * d + j] = X_T(v * stats[s] + stats[params.stat_count + s]);
    }
  } else {
    for (var j = lane; j < d; j = j + 64u) {
      let v = sample_value(slot, row, j);
      let s = j / params.plane;
      x[r * d + j] = X_T(v * stats[s] + stats[params.stat_count + s]);
    }
  }
  if (lane == 0u) {
    y[r] = labels[id];
  }
}
