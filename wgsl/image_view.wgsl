// A fixed view of a batch of images, normalised into the model's input: the clean input itself
// (no shift, no flip), or one of the test-time augmentation views (a horizontal flip, a crop
// shifted by whole pixels with zero fill). Samples that are not images are one row of D values
// (channels 1, height 1, width D), whose only view is the identity.
//
// raw holds the batch's values before normalisation (a byte as 0..255 or an f32 feature, as the
// gather reads them); images are channels × height × width, channel-major. Output value
// (r, c, y, x):
//   xs = flip ? width − 1 − x : x,   (sy, sx) = (y + shift_y, xs + shift_x)
//   v  = raw[r, c, sy, sx] when 0 ≤ sy < height and 0 ≤ sx < width, else 0
//   out[r, c, y, x] = v · stats[s] + stats[stat_count + s],  s = (index within the row) / plane
// which is the gather's padded crop P(c, y, x') with (shift_y, shift_x) = (dy − pad, dx − pad) and
// its flip (wgsl/gather.wgsl), normalised by the gather's expression on the same operands, so the
// identity view of a batch is the gather's evaluation batch.
//
// Bindings: 0 raw: array<f32> (n), 1 out: array<X_T> (n; X_T f32 or f16, core/kernels.ts
// withStorage), 2 stats: array<f32> (2·stat_count), 3 params: uniform ViewParams
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts
// grid); n = batch·features, features = channels·height·width.

struct ViewParams {
  n: u32,
  features: u32,
  plane: u32,
  stat_count: u32,
  height: u32,
  width: u32,
  shift_y: i32,
  shift_x: i32,
  flip: u32,
  unused0: u32,
  unused1: u32,
  unused2: u32,
}

alias X_T = f32;

@group(0) @binding(0) var<storage, read> raw: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<X_T>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<uniform> params: ViewParams;

@compute @workgroup_size(256)
fn image_view(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) {
    return;
  }
  let d = params.features;
  let row = i / d;
  let j = i - row * d;
  let w = params.width;
  let hw = params.height * w;
  let c = j / hw;
  let y = (j - c * hw) / w;
  let x = j - c * hw - y * w;
  var xs = i32(x);
  if (params.flip == 1u) {
    xs = i32(w) - 1 - xs;
  }
  let sy = i32(y) + params.shift_y;
  let sx = xs + params.shift_x;
  var v = 0.0;
  if (sy >= 0 && sx >= 0 && sy < i32(params.height) && sx < i32(w)) {
    v = raw[row * d + c * hw + u32(sy) * w + u32(sx)];
  }
  let s = j / params.plane;
  out[i] = X_T(v * stats[s] + stats[params.stat_count + s]);
}
