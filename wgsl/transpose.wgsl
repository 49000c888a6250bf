// Transpose of two axes of a row-major tensor. The input is viewed as [O, A, MID, B, IN] (the two
// swapped axes A and B, what lies between them MID, before them O, after them IN; any of O, MID, IN
// may be 1) and the output as [O, B, MID, A, IN]:
//   out[o, b, m, a, i] (=|+=) x[o, a, m, b, i]
// Its own backward: dx = the same transpose of dy with A and B exchanged (accumulating when the
// input's gradient has other contributions).
//
// Entry point `main`, bindings (group 0):
//   0 x: array<X_T> (n)   1 out: array<X_T> (n), read_write   2 params {n, a, mid, b, inner}
// X_T, the values' storage type, is f32 or f16 (core/kernels.ts withStorage); a gradient is f32.
// Override ACCUMULATE: out += instead of out =.
// Dispatch: one invocation per output element, ceil(n / 256) workgroups of 256 split over x and y
// above 65535 (core/kernels.ts grid). Each invocation decodes its output index and gathers.

alias X_T = f32;

struct TransposeParams {
  n: u32,
  a: u32,
  mid: u32,
  b: u32,
  inner: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> out: array<X_T>;
@group(0) @binding(2) var<uniform> params: TransposeParams;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) {
    return;
  }
  // Output index i = (((o·B + b)·MID + m)·A + a)·IN + inner.
  let inner = i % params.inner;
  var t = i / params.inner;
  let a = t % params.a;
  t = t / params.a;
  let m = t % params.mid;
  t = t / params.mid;
  let b = t % params.b;
  let o = t / params.b;
  let src = (((o * params.a + a) * params.mid + m) * params.b + b) * params.inner + inner;
  if (ACCUMULATE) {
    out[i] = X_T(f32(out[i]) + f32(x[src]));
  } else {
    out[i] = x[src];
  }
}
