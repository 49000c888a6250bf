// Batch gather: builds a normalised f32 batch and its labels from a uint8 dataset kept on the GPU,
// so a training step needs no CPU→GPU copy (DESIGN.md "GPU-resident data").
//
// The dataset is `rows` rows of D = row_bytes bytes, packed 4 bytes per u32, little-endian: byte j
// of the flat dataset is (data[j / 4] >> (8·(j % 4))) & 0xFF; rows straddle words when D % 4 ≠ 0.
// Labels are u8 packed the same way. Each epoch uploads a shuffled index buffer `indices` of
// `count` row ids; batch row r of a step reads row indices[start + r], with
//   start = cursor[cursor_index] · cursor_stride
// read on the GPU, so one Dispatch serves every step of every epoch: the trainer advances the
// cursor on the GPU (by `batch` with cursor_stride 1, or by 1 when the cursor is the step-in-epoch
// counter and cursor_stride = batch). Rows with start + r ≥ count (the partial last batch) are
// masked: x = 0, label = 0; the valid rows are the first min(batch, count − start).
//
//   gather_batch: x[r, j] = f32(byte j of row indices[start + r]) · scale[c] + shift[c],
//                 c = j / plane, scale[c] = 1/(255·std_c), shift[c] = −mean_c/std_c, i.e.
//                 (byte/255 − mean_c)/std_c with the channel-first layout (C, H, W) of
//                 algorithms.md §1.1 (plane = D / channels, up to 4 channels);
//                 y[r] = label byte of that row.
// Bindings:
//   0 data: array<u32> (ceil(rows·D / 4)), 1 label_data: array<u32> (ceil(rows / 4)),
//   2 indices: array<u32> (count), 3 cursor: array<u32> (≥ cursor_index + 1),
//   4 x: array<X_T> (batch·D; X_T f32 or f16, core/kernels.ts withStorage), 5 y: array<u32> (batch), 6 params: uniform GatherParams
// Dispatch: one invocation per element of x (the one with j = 0 also writes the label),
// ceil(batch·D / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

struct GatherParams {
  batch: u32,
  row_bytes: u32,
  plane: u32,
  cursor_index: u32,
  cursor_stride: u32,
  count: u32,
  scale: vec4<f32>,
  shift: vec4<f32>,
}

alias X_T = f32;

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read> label_data: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> cursor: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<X_T>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;
@group(0) @binding(6) var<uniform> params: GatherParams;

fn packed_byte(word: u32, byte_index: u32) -> u32 {
  return (word >> (8u * (byte_index & 3u))) & 0xFFu;
}

@compute @workgroup_size(256)
fn gather_batch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= params.batch * params.row_bytes) {
    return;
  }
  let r = t / params.row_bytes;
  let j = t - r * params.row_bytes;
  let position = cursor[params.cursor_index] * params.cursor_stride + r;
  if (position >= params.count) {
    x[t] = X_T(0.0);
    if (j == 0u) {
      y[r] = 0u;
    }
    return;
  }
  let row = indices[position];
  let flat = row * params.row_bytes + j;
  let value = f32(packed_byte(data[flat >> 2u], flat));
  let c = j / params.plane;
  x[t] = X_T(value * params.scale[c] + params.shift[c]);
  if (j == 0u) {
    y[r] = packed_byte(label_data[row >> 2u], row);
  }
}
