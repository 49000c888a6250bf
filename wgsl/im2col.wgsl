// im2col for a k×k convolution with stride 1 and zero padding `pad`, and its adjoint col2im: the
// convolution becomes one matmul of the columns with the weight viewed as [O, C·k·k] (PyTorch's
// [O, C, k, k] flattened), over rows of output pixels (core/graph/nn.ts conv2dWith).
//   im2col: cols[b, oy, ox, (c·k + ky)·k + kx] = x[b, c, oy + ky − pad, ox + kx − pad] (0 outside)
//   col2im: dx[b, c, iy, ix] (=|+=) Σ_{ky,kx} dcols[b, iy − ky + pad, ix − kx + pad, (c·k + ky)·k + kx]
//           over the output pixels inside [0, OH) × [0, OW)
// The input's layout is given by strides: element (b, c, y, x) lives at
// b·C·H·W + c·c_stride + (y·W + x)·p_stride — NCHW (c_stride = H·W, p_stride = 1: the dataset's
// images) or NHWC (c_stride = 1, p_stride = C: what the convolution itself produces). The columns
// are [B·OH·OW, C·k·k] with OH = H + 2·pad − k + 1 (and OW alike).
//
// Entry points, bindings (group 0):
//   im2col: 0 x: array<X_T> (B·C·H·W)   1 cols: array<X_T> (B·OH·OW·C·k·k), written   2 params
//   col2im: 0 dcols: array<f32>          1 dx: array<f32> (B·C·H·W), read_write         2 params
// params {batch, channels, height, width, kernel, pad, out_h, out_w, c_stride, p_stride}.
// X_T, the values' storage type, is f32 or f16 (core/kernels.ts withStorage); gradients are f32.
// Override ACCUMULATE (col2im): dx += instead of dx =.
// Dispatch: one invocation per element written (im2col: per column entry; col2im: per input
// element, which gathers its ≤ k² contributions, so no two invocations write one element),
// ceil(count / 256) workgroups of 256 split over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct ConvParams {
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  kernel: u32,
  pad: u32,
  out_h: u32,
  out_w: u32,
  c_stride: u32,
  p_stride: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> cols: array<X_T>;
@group(0) @binding(2) var<uniform> params: ConvParams;

@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let kk = params.kernel * params.kernel;
  let width = params.channels * kk;
  let pixels = params.out_h * params.out_w;
  if (i >= params.batch * pixels * width) {
    return;
  }
  let row = i / width;
  let col = i % width;
  let b = row / pixels;
  let p = row % pixels;
  let oy = p / params.out_w;
  let ox = p % params.out_w;
  let c = col / kk;
  let r = col % kk;
  // Signed: the padding reaches before the first row and column.
  let iy = i32(oy + r / params.kernel) - i32(params.pad);
  let ix = i32(ox + r % params.kernel) - i32(params.pad);
  var v = X_T(0.0);
  if (iy >= 0 && ix >= 0 && iy < i32(params.height) && ix < i32(params.width)) {
    let image = params.channels * params.height * params.width;
    v = x[b * image + c * params.c_stride + (u32(iy) * params.width + u32(ix)) * params.p_stride];
  }
  cols[i] = v;
}

@group(0) @binding(0) var<storage, read> dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let hw = params.height * params.width;
  let image = params.channels * hw;
  if (i >= params.batch * image) {
    return;
  }
  let b = i / image;
  let rest = i % image;
  let c = (rest / params.c_stride) % params.channels;
  let p = (rest / params.p_stride) % hw;
  let iy = i32(p / params.width);
  let ix = i32(p % params.width);
  let k = params.kernel;
  let width = params.channels * k * k;
  let pixels = params.out_h * params.out_w;
  var s = 0.0;
  for (var ky = 0u; ky < k; ky++) {
    let oy = iy - i32(ky) + i32(params.pad);
    if (oy < 0 || oy >= i32(params.out_h)) {
      continue;
    }
    for (var kx = 0u; kx < k; kx++) {
      let ox = ix - i32(kx) + i32(params.pad);
      if (ox < 0 || ox >= i32(params.out_w)) {
        continue;
      }
      let row = b * pixels + u32(oy) * params.out_w + u32(ox);
      s += dcols[row * width + (c * k + ky) * k + kx];
    }
  }
  if (ACCUMULATE) {
    dx[i] = dx[i] + s;
  } else {
    dx[i] = s;
  }
}
