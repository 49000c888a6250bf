// Max-pooling of channels-last images over s×s windows with stride s (PyTorch's MaxPool2d(s):
// trailing rows and columns that fill no window are dropped), and its backward:
//   forward:  y[b, oy, ox, c] = max_{dy,dx < s} x[b, s·oy + dy, s·ox + dx, c]
//   backward: dx[b, iy, ix, c] (=|+=) dy[b, iy/s, ix/s, c] if (iy, ix) is the window's first
//             maximum in row-major order (PyTorch's choice), else 0 (also outside every window)
// x is [B, H, W, C], y is [B, OH, OW, C] with OH = ⌊H/s⌋, OW = ⌊W/s⌋. The backward finds each
// window's maximum again from x instead of saving its index.
//
// Entry points, bindings (group 0):
//   forward:  0 x: array<X_T> (B·H·W·C)  1 y: array<X_T> (B·OH·OW·C), written    2 params
//   backward: 0 x: array<X_T> (B·H·W·C)  1 dy: array<f32> (B·OH·OW·C)           2 params
//             3 dx: array<f32> (B·H·W·C), read_write
// params {batch, height, width, channels, size, out_h, out_w}. X_T, the values' storage type, is
// f32 or f16 (core/kernels.ts withStorage); gradients are f32.
// Override ACCUMULATE (backward): dx += instead of dx =.
// Dispatch: forward one invocation per output; backward one per window of the ⌈H/s⌉ × ⌈W/s⌉
// grid (B·⌈H/s⌉·⌈W/s⌉·C; the windows are disjoint, so no two invocations write one element),
// ceil(count / 256) workgroups of 256 split over x and y above 65535 (core/kernels.ts grid).

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
  // One invocation per window of the ⌈H/s⌉ × ⌈W/s⌉ grid: windows are disjoint (stride = size),
  // so it alone writes its s² elements of dx; a window cut by the border is the leftover rows
  // and columns that no output reads, whose gradient is 0.
  let i = gid.x + gid.y * nwg.x * 256u;
  let s = params.size;
  let grid_h = (params.height + s - 1u) / s;
  let grid_w = (params.width + s - 1u) / s;
  if (i >= params.batch * grid_h * grid_w * params.channels) {
    return;
  }
  let c = i % params.channels;
  var t = i / params.channels;
  let ox = t % grid_w;
  t = t / grid_w;
  let oy = t % grid_h;
  let b = t / grid_h;
  let whole = oy < params.out_h && ox < params.out_w;
  var best = 0xffffffffu;
  var g = 0.0;
  if (whole) {
    best = window_argmax(b, oy, ox, c);
    g = dy[((b * params.out_h + oy) * params.out_w + ox) * params.channels + c];
  }
  for (var wy = 0u; wy < s; wy++) {
    for (var wx = 0u; wx < s; wx++) {
      let iy = oy * s + wy;
      let ix = ox * s + wx;
      if (iy >= params.height || ix >= params.width) {
        continue;
      }
      let at = ((b * params.height + iy) * params.width + ix) * params.channels + c;
      let v = select(0.0, g, at == best);
      if (ACCUMULATE) {
        dx[at] = dx[at] + v;
      } else {
        dx[at] = v;
      }
    }
  }
}
