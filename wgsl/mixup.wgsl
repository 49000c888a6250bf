// Mixup of a batch in place, pairing row r with row B−1−r (the flipped batch, as timm's Mixup):
//   x[r] ← λ·x[r] + (1−λ)·x[B−1−r],  labels2[r] = labels[B−1−r],  lambda_out[0] = λ,
// with λ = lambdas[min(counters[counter_index], table_len − 1)] (a per-micro-step table made once
// on the CPU from the seed, so a resumed run mixes the same way). The middle row of an odd batch
// pairs with itself and is unchanged. The loss kernel reads labels2 and lambda_out.
//   mixup: bindings 0 x: array<X_T> (B·D, in place; X_T f32 or f16, core/kernels.ts
//          withStorage), 1 labels: array<u32> (B),
//          2 labels2: array<u32> (B), 3 lambdas: array<f32> (table_len), 4 counters: array<u32>,
//          5 lambda_out: array<f32> (1), 6 params {batch, features, counter_index, table_len}
// Dispatch: ceil(ceil(B/2)·D / 256) workgroups of 256 (x, with y above 65535): one invocation
// per (row pair, column), so both rows of a pair are read before either is written.

struct MixupParams {
  batch: u32,
  features: u32,
  counter_index: u32,
  table_len: u32,
}

alias X_T = f32;

@group(0) @binding(0) var<storage, read_write> x: array<X_T>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> labels2: array<u32>;
@group(0) @binding(3) var<storage, read> lambdas: array<f32>;
@group(0) @binding(4) var<storage, read> counters: array<u32>;
@group(0) @binding(5) var<storage, read_write> lambda_out: array<f32>;
@group(0) @binding(6) var<uniform> params: MixupParams;

@compute @workgroup_size(256)
fn mixup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  let pairs = (params.batch + 1u) / 2u;
  if (t >= pairs * params.features) {
    return;
  }
  let lambda = lambdas[min(counters[params.counter_index], params.table_len - 1u)];
  let p = t / params.features;
  let j = t % params.features;
  let q = params.batch - 1u - p;
  if (t == 0u) {
    lambda_out[0] = lambda;
  }
  if (j == 0u) {
    labels2[p] = labels[q];
    labels2[q] = labels[p];
  }
  if (p != q) {
    let a = f32(x[p * params.features + j]);
    let b = f32(x[q * params.features + j]);
    x[p * params.features + j] = X_T(lambda * a + (1.0 - lambda) * b);
    x[q * params.features + j] = X_T(lambda * b + (1.0 - lambda) * a);
  }
}
