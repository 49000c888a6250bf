// What the evaluation reads from a batch's predictions, on the GPU, so a split's confusion matrix,
// binary scores and test-time-augmented predictions need no per-sample CPU work.
//   count_predictions: for each row r < rows (the valid rows of the batch):
//       pred = width == 1 ? (z_r0 > 0 ? 1 : 0) : argmax_k z_rk (ties to the lowest index, as the
//              loss kernels' correct flags: wgsl/softmax_cross_entropy.wgsl, label_losses.wgsl)
//       counts[labels[r]·classes + pred] += 1 (atomically), or counts[classes²] += 1 when the
//       label is ≥ classes;
//       with scores (has_scores = 1), at the row's split position q = cursor[cursor_index]·
//       cursor_stride + r < score_count: scores[q] = z_r0 (width 1: the logit of class 1) or
//       z_r1 − z_r0 (width 2: the log-odds of class 1), what an ROC curve ranks
//   sum_logits: sum[i] = (accumulate == 1 ? sum[i] : 0) + z[i] over n values (the logits of
//       each test-time view added up)
// z is X_T (f32 or f16, core/kernels.ts withStorage); counts and scores are read back once per
// split.
//
// Bindings:
//   count_predictions: 0 logits: array<X_T> (batch·width), 1 labels: array<u32> (batch),
//     2 counts: array<atomic<u32>> (classes² + 1), 3 scores: array<f32> (≥ 1),
//     4 cursor: array<u32>, 5 params: uniform CountParams
//   sum_logits: 0 logits: array<X_T> (n), 1 sum: array<f32> (n), 2 params: uniform SumParams
// Dispatch: count_predictions ceil(rows / 64) workgroups of 64 (split over x and y above 65535,
// core/kernels.ts grid), one invocation per row; sum_logits ceil(n / 256) workgroups of 256.

struct CountParams {
  rows: u32,
  width: u32,
  classes: u32,
  has_scores: u32,
  cursor_index: u32,
  cursor_stride: u32,
  score_count: u32,
  unused: u32,
}

struct SumParams {
  n: u32,
  accumulate: u32,
}

alias X_T = f32;

@group(0) @binding(0) var<storage, read> logits: array<X_T>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read> cursor: array<u32>;
@group(0) @binding(5) var<uniform> params: CountParams;

@group(0) @binding(1) var<storage, read_write> sum: array<f32>;
@group(0) @binding(2) var<uniform> sum_params: SumParams;

@compute @workgroup_size(64)
fn count_predictions(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= params.rows) {
    return;
  }
  let width = params.width;
  let base = r * width;
  var pred = 0u;
  if (width == 1u) {
    pred = select(0u, 1u, f32(logits[base]) > 0.0);
  } else {
    var best = f32(logits[base]);
    for (var k = 1u; k < width; k = k + 1u) {
      let z = f32(logits[base + k]);
      if (z > best) {
        best = z;
        pred = k;
      }
    }
  }
  let y = labels[r];
  let classes = params.classes;
  if (y < classes) {
    atomicAdd(&counts[y * classes + pred], 1u);
  } else {
    atomicAdd(&counts[classes * classes], 1u);
  }
  if (params.has_scores == 1u) {
    let q = cursor[params.cursor_index] * params.cursor_stride + r;
    if (q < params.score_count) {
      var score = f32(logits[base]);
      if (width == 2u) {
        score = f32(logits[base + 1u]) - score;
      }
      scores[q] = score;
    }
  }
}

@compute @workgroup_size(256)
fn sum_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= sum_params.n) {
    return;
  }
  var total = f32(logits[i]);
  if (sum_params.accumulate == 1u) {
    total = total + sum[i];
  }
  sum[i] = total;
}
