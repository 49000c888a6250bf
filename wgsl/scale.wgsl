// Scale: out = alpha · x, elementwise over n values.
//   scale:           bindings 0 x: array<f32> (n), 1 out: array<f32> (n), 2 params {n, alpha}
//   scale_in_place:  bindings 0 x: array<f32> (n) scaled in place, 1 params {n, alpha}
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

struct ScaleParams {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: ScaleParams;

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < params.n) {
    out[i] = params.alpha * x[i];
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
