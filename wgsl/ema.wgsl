// A power-function EMA of the weights (EDM2's phema.py, algorithms.md §4.1), updated on the GPU
// after each optimizer step: with t = counters[counter_index] the steps taken (read after the
// step counter advanced, so t ≥ 1),
//   ema[i] = ema[i] + c_t · (weights[i] − ema[i])     for i < n,  i.e. β_t·ema + (1 − β_t)·weights
// where c_t = table[t] = 1 − β_t, β_t = (1 − 1/t)^{γ+1}, is computed in float64 on the CPU
// (core/train/ema.ts) so it never cancels in f32, and the two weights sum to 1 exactly; a t beyond
// the table takes its last entry. c_1 = 1: the first step sets the average to the weights.
//
// Bindings:
//   0 weights: array<f32> (n), the flat parameters
//   1 ema: array<f32> (n), read and written
//   2 counters: array<u32> (≥ counter_index + 1), the step counters
//   3 table: array<f32> (≥ 1), c_t = 1 − β_t of every t
//   4 setup: uniform EmaParams {n, counter_index}
// Dispatch: ceil(n / 256) workgroups of 256, split over x and y above 65535 (core/kernels.ts grid).

struct EmaParams {
  n: u32,
  counter_index: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<f32>;
@group(0) @binding(1) var<storage, read_write> ema: array<f32>;
@group(0) @binding(2) var<storage, read> counters: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<uniform> setup: EmaParams;

@compute @workgroup_size(256)
fn ema_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= setup.n) {
    return;
  }
  let c = table[min(counters[setup.counter_index], arrayLength(&table) - 1u)];
  // c = 1 (the first step) overwrites: the average starts at the weights whatever the buffer held.
  if (c >= 1.0) {
    ema[i] = weights[i];
  } else {
    let e = ema[i];
    ema[i] = e + c * (weights[i] - e);
  }
}
