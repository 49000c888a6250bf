// The binary code of row indices, as ±1 features, least significant bit first: the fixed input of
// an index-MLP hypernetwork (algorithms.md §7.3), which maps the index of each chunk of the target
// network's weights to that chunk.
//   out[r, k] = +1 if bit k of (r + first) is set, else −1        for r < rows, k < bits ≤ 32
// ±1 rather than {0, 1}: every row then has the same squared norm (bits), so a layer after it
// starts with the same pre-activation variance for every index.
//
// Entry point `main`, bindings (group 0): 0 out: array<X_T> (rows·bits), written
// 1 params {rows, bits, first}. X_T is f32 or f16 (core/kernels.ts withStorage).
// Dispatch: one invocation per output element, ceil(rows·bits / 256) workgroups of 256 split over
// x and y above 65535 (core/kernels.ts grid).

alias X_T = f32;

struct BitsParams {
  rows: u32,
  bits: u32,
  first: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<X_T>;
@group(0) @binding(1) var<uniform> params: BitsParams;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.rows * params.bits) {
    return;
  }
  let r = i / params.bits + params.first;
  let k = i % params.bits;
  out[i] = select(X_T(-1.0), X_T(1.0), ((r >> k) & 1u) == 1u);
}
