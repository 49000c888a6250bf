// Column windows of row-major matrices, for concatenation and slicing along the last axis:
//   copy: out[r, out_offset + j] (=|+=) x[r, in_offset + j]      for j < width, r < rows
//   pad:  out[r, j] = x[r, j − out_offset] for out_offset ≤ j < out_offset + width, else 0
//         (r < rows, j < out_cols: every element of out is written; a slice's backward)
// x has in_cols columns, out has out_cols.
//
// Entry points, bindings (group 0): 0 x: array<X_T>  1 out: array<X_T>, read_write  2 params
// {rows, width, in_cols, in_offset, out_cols, out_offset}. X_T is f32 or f16 (core/kernels.ts
// withStorage); gradients are f32. Override ACCUMULATE (copy): out += instead of out =.
// Dispatch: one invocation per element written (copy: rows·width; pad: rows·out_cols),
// ceil(count / 256) workgroups of 256 split over x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct ColumnParams {
  rows: u32,
  width: u32,
  in_cols: u32,
  in_offset: u32,
  out_cols: u32,
  out_offset: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> out: array<X_T>;
@group(0) @binding(2) var<uniform> params: ColumnParams;

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= params.rows * params.width) {
    return;
  }
  let r = e / params.width;
  let j = e % params.width;
  let v = x[r * params.in_cols + params.in_offset + j];
  let to = r * params.out_cols + params.out_offset + j;
  if (ACCUMULATE) {
    out[to] = X_T(f32(out[to]) + f32(v));
  } else {
    out[to] = v;
  }
}

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 256u;
  if (e >= params.rows * params.out_cols) {
    return;
  }
  let r = e / params.out_cols;
  let j = e % params.out_cols;
  var v = X_T(0.0);
  if (j >= params.out_offset && j < params.out_offset + params.width) {
    v = x[r * params.in_cols + params.in_offset + j - params.out_offset];
  }
  out[e] = v;
}
