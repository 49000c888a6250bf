// Scale: out = alpha · x, elementwise over n values.
//   scale:           bindings 0 x: array<X_T> (n), 1 out: array<Y_T> (n), 2 params {n, alpha};
//                    X_T and Y_T are f32 or f16 (core/kernels.ts withStorage): with alpha = 1
//                    and different types, a conversion (f32 weights → their f16 copy)
//   scale_in_place:  bindings 0 x: array<f32> (n) scaled in place, 1 params {n, alpha}
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;
alias Y_T = f32;

struct ScaleParams {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> out: array<Y_T>;
@group(0) @binding(2) var<uniform> params: ScaleParams;

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) {
    out[i] = Y_T(params.alpha * f32(x[i]));
  }
}

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<uniform> in_place_params: ScaleParams;

@compute @workgroup_size(256)
fn scale_in_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < in_place_params.n) {
    values[i] = in_place_params.alpha * values[i];
  }
}
