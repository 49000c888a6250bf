// Max-pooling of channels-last images over s×s windows with stride s (PyTorch's MaxPool2d(s):
// trailing rows and columns that fill no window are dropped), and its backward:
//   forward:  y[b, oy, ox, c] = max_{dy,dx < s} x[b, s·oy + dy, s·ox + dx, c]
//   backward: dx[b, iy, ix, c] (=|+=) dy[b, iy/s, ix/s, c] if (iy, ix) is the window's first
//             maximum in row-major order (PyTorch's choice), else 0 (also outside every window)
// x is [B, H, W, C], y is [B, OH, OW, C] with OH = ⌊H/s⌋, OW = ⌊W/s⌋. The backward finds the
// window's maximum again from x instead of saving its index.
//
// Entry points, bindings (group 0):
//   forward:  0 x: array<X_T> (B·H·W·C)  1 y: array<X_T> (B·OH·OW·C), written    2 params
//   backward: 0 x: array<X_T> (B·H·W·C)  1 dy: array<f32> (B·OH·OW·C)           2 params
//             3 dx: array<f32> (B·H·W·C), read_write
// params {batch, height, width, channels, size, out_h, out_w}. X_T, the values' storage type, is
// f32 or f16 (core/kernels.ts withStorage); gradients are f32.
// Override ACCUMULATE (backward): dx += instead of dx =.
// Dispatch: one invocation per element written (forward: per output; backward: per input
// element, so no two invocations write one element), ceil(count / 256) workgroups of 256 split
// over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct PoolParams {
  batch: u32,
  height: u32,
  width: u32,
  channels: u32,
  size: u32,
  out_h: u32,
  out_w: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> y: array<X_T>;
@group(0) @binding(2) var<uniform> params: PoolParams;

/** The flat index in x of the first maximum of window (b, oy, ox) in channel c. */
fn window_argmax(b: u32, oy: u32, ox: u32, c: u32) -> u32 {
  var best = 0u;
  var value = 0.0;
  for (var wy = 0u; wy < params.size; wy++) {
    for (var wx = 0u; wx < params.size; wx++) {
      let iy = oy * params.size + wy;
      let ix = ox * params.size + wx;
      let at = ((b * params.height + iy) * params.width + ix) * params.channels + c;
      let v = f32(x[at]);
      if ((wy == 0u && wx == 0u) || v > value) {
        best = at;
        value = v;
      }
    }
  }
  return best;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.batch * params.out_h * params.out_w * params.channels) {
    return;
  }
  let c = i % params.channels;
  var t = i / params.channels;
  let ox = t % params.out_w;
  t = t / params.out_w;
  let oy = t % params.out_h;
  let b = t / params.out_h;
  y[i] = x[window_argmax(b, oy, ox, c)];
}

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.batch * params.height * params.width * params.channels) {
    return;
  }
  let c = i % params.channels;
  var t = i / params.channels;
  let ix = t % params.width;
  t = t / params.width;
  let iy = t % params.height;
  let b = t / params.height;
  let oy = iy / params.size;
  let ox = ix / params.size;
  var g = 0.0;
  if (oy < params.out_h && ox < params.out_w && window_argmax(b, oy, ox, c) == i) {
    g = dy[((b * params.out_h + oy) * params.out_w + ox) * params.channels + c];
  }
  if (ACCUMULATE) {
    dx[i] = dx[i] + g;
  } else {
    dx[i] = g;
  }
}
