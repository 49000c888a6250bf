// Residual add: out = a + b (add), out = a + b broadcast over a's leading axes (add_broadcast:
// b[i mod nb], e.g. a bias [C] added to every row of [B, T, C]), or acc += x (add_in_place, e.g.
// summing gradients of a tensor used twice), elementwise over n values.
//   add:           bindings 0 a: array<X_T> (n), 1 b: array<X_T> (n), 2 out: array<X_T> (n),
//                  3 params {n, nb}; X_T, the values' storage type, is f32 or f16 (core/kernels.ts
//                  withStorage), the sum f32
//   add_broadcast: the same with b of nb values, nb dividing n
//   add_in_place: bindings 0 x: array<f32> (n), 1 acc: array<f32> (n), 2 params {n}
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct AddParams {
  n: u32,
  nb: u32,
}

@group(0) @binding(0) var<storage, read> a: array<X_T>;
@group(0) @binding(1) var<storage, read> b: array<X_T>;
@group(0) @binding(2) var<storage, read_write> out: array<X_T>;
@group(0) @binding(3) var<uniform> params: AddParams;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) {
    out[i] = X_T(f32(a[i]) + f32(b[i]));
  }
}

@compute @workgroup_size(256)
fn add_broadcast(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) {
    out[i] = X_T(f32(a[i]) + f32(b[i % params.nb]));
  }
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<uniform> in_place_params: AddParams;

@compute @workgroup_size(256)
fn add_in_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < in_place_params.n) {
    acc[i] = acc[i] + x[i];
  }
}
