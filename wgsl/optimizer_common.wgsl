// What every optimizer update kernel shares (wgsl/optimizer.wgsl's sgd and lamb, and the
// defineOptimizer template wgsl/optimizer_template.wgsl), pulled in with `//!include optimizer`.
// The including kernel declares the storage buffers these read:
//   segments: array<Segment> (start, end, lr_mult, weight_decay), sorted by start, disjoint;
//   grad_norm: array<f32>, grad_norm[0] = Σg² over all unscaled gradients.
//   find_segment(i, count): the index of the segment holding element i, or −1 when none does
//   one_minus_pow(log_β, t): 1 − βᵗ from t·ln β, without the cancellation of 1 − exp(x) near 0
//   gradient_factor(scale, max_norm): scale times the global-norm clip factor of the scaled
//                                     gradient (max_norm 0: no clipping)

fn find_segment(i: u32, count: u32) -> i32 {
  var lo = 0u;
  var hi = count;
  // Invariant: segments[0..lo) start at or before i, segments[hi..) start after it.
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (segments[mid].start <= i) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  if (lo == 0u || i >= segments[lo - 1u].end) {
    return -1;
  }
  return i32(lo - 1u);
}

// −expm1(x): a Taylor series where exp(x) − 1 would cancel.
fn one_minus_pow(log_beta: f32, t: f32) -> f32 {
  let x = t * log_beta;
  if (x > -0.25) {
    let p = 1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x / 720.0))));
    return -x * p;
  }
  return 1.0 - exp(x);
}

fn gradient_factor(scale: f32, max_norm: f32) -> f32 {
  var factor = scale;
  if (max_norm > 0.0) {
    let norm = sqrt(max(grad_norm[0], 0.0)) * abs(scale);
    factor *= min(1.0, max_norm / (norm + 1e-6));
  }
  return factor;
}
