// Fast Feedforward layer (Belcak & Wattenhofer 2023; algorithms.md §8): a binary tree of depth D
// with N = 2^D − 1 node neurons in heap order (node n's children are 2n+1, left, and 2n+2, right)
// and L = 2^D leaves, each a 2-layer FF in → W (leaf width) → out with ReLU. The node logits
// z [rows, N] and the leaves' hidden layer [rows, L·W] are ordinary matmuls (core/graph/rules_fff.ts);
// these entry points are the tree's own parts.
//   fff_probs:            probs[r, n] = leak_{r,n} ? 1 − σ(z) : σ(z), the probability of going
//                         right, flipped with probability `leak` in training (region leak);
//                         leak_{r,n} = philox_uniform(philox_word(seed, stream, step, r·N + n)) < leak
//   fff_mixture:          mix[r, ℓ] = Π_{d<D} (b_d ? p_{n_d} : 1 − p_{n_d}), b_d bit d of ℓ (MSB first),
//                         n_0 = 0, n_{d+1} = 2n_d + 1 + b_d
//   fff_mixture_backward: dz[r, n] = ±p(1−p) · a_n · (G_right − G_left), a_n the product of the
//                         factors above n, G_child = Σ_{ℓ under child} dmix[r, ℓ] · Π of the factors
//                         below n on ℓ's path (products of the other factors: no division), the sign
//                         − where the forward leaked (the Philox draw is repeated)
//   fff_gate:             gated[r, ℓW + j] = hidden[r, ℓW + j] · mix[r, ℓ]
//   fff_gate_backward:    dhidden[r, ℓW + j] = dgated · mix[r, ℓ];  dmix[r, ℓ] += Σ_j hidden · dgated
//   fff_entropy:          h[r] = (1/N) Σ_n H(σ(clamp(z[r, n]))), H(p) = −p ln p − (1−p) ln(1−p), p
//                         clamped to [1e-6, 1 − 1e-6] as in the reference repo (|z| ≤ Z_CLAMP)
//   fff_entropy_backward: dz[r, n] = dh[r] · (1/N) · (−z·p(1−p)) inside the clamp, 0 outside
//   fff_hard:             evaluation, one hard path per row: n ← 2n + 1 + (z_n ≥ 0) for D levels
//                         (only those D node dot products), ℓ = n − N, then only leaf ℓ:
//                         y[r] = W2_ℓ·relu(W1_ℓ·x[r] + b1_ℓ) + b2_ℓ (b2 included: §8.3's bug fixed)
//
// Bindings (0 is always params: uniform FffParams):
//   fff_probs:            1 z: array<f32> (rows·N), 2 probs rw (rows·N), 3 counters: array<u32>
//   fff_mixture:          1 probs (rows·N), 2 mix rw (rows·L)
//   fff_mixture_backward: 1 probs (rows·N), 2 dz rw (rows·N), 3 counters, 4 dmix (rows·L)
//   fff_gate:             1 hidden (rows·L·W), 2 gated rw (rows·L·W), 3 mix (rows·L)
//   fff_gate_backward:    1 hidden (rows·L·W), 2 dhidden rw (rows·L·W), 3 mix (rows·L),
//                         4 dgated (rows·L·W), 5 dmix rw (rows·L), added to
//   fff_entropy:          1 z (rows·N), 2 h rw (rows)
//   fff_entropy_backward: 1 z (rows·N), 2 dz rw (rows·N), 3 dh (rows)
//   fff_hard:             1 x (rows·in), 2 y rw (rows·out), 3 node_w [N, in], 4 node_b [N],
//                         5 w1 [L·W, in], 6 b1 [L·W], 7 w2 [out, L·W], 8 b2 [L, out]
// Every buffer is f32. Override ACCUMULATE (fff_mixture_backward, fff_entropy_backward): dz += .
// Dispatch: fff_probs, fff_mixture_backward and fff_entropy_backward one invocation per (row,
// node), fff_mixture per (row, leaf), fff_gate per element, fff_gate_backward per (row, leaf),
// fff_entropy per row: ceil(count / 64) workgroups of 64, split over x and y above 65535
// (core/kernels.ts grid). fff_hard: one workgroup of 64 per row (grid(rows, 1)); its leaf width
// is at most MAX_LEAF_WIDTH. fff_hard_vec4 (same bindings, in a multiple of 4) reads x, node_w
// and w1 as vec4.

//!include philox

struct FffParams {
  rows: u32,
  nodes: u32,
  leaves: u32,
  depth: u32,
  width: u32,
  outputs: u32,
  inputs: u32,
  leak: f32,
  seed: u32,
  stream: u32,
  counter_index: u32,
  inv_nodes: f32,
}

override ACCUMULATE: bool = false;

const WG: u32 = 64u;
const MAX_LEAF_WIDTH: u32 = 1024u;
// σ(Z_CLAMP) = 1 − 1e-6: the repo's clamp of p, as a clamp of the logit.
const Z_CLAMP: f32 = 13.815509557963773;

@group(0) @binding(0) var<uniform> params: FffParams;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn sigmoid(z: f32) -> f32 {
  return 1.0 / (1.0 + exp(-z));
}

// Whether element i = r·N + n leaked at this step (training only; leak 0 never does).
fn leaked(i: u32) -> bool {
  if (params.leak <= 0.0) {
    return false;
  }
  let step = counters[params.counter_index];
  let words = philox4x32(vec4<u32>(i >> 2u, step, 0u, 0u), vec2<u32>(params.seed, params.stream));
  return philox_uniform(words[i & 3u]) < params.leak;
}

@group(0) @binding(1) var<storage, read> z_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs_out: array<f32>;
@group(0) @binding(3) var<storage, read> counters: array<u32>;

@compute @workgroup_size(WG)
fn fff_probs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.rows * params.nodes) {
    return;
  }
  let p = sigmoid(z_in[i]);
  probs_out[i] = select(p, 1.0 - p, leaked(i));
}

@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> mix_out: array<f32>;

@compute @workgroup_size(WG)
fn fff_mixture(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.rows * params.leaves) {
    return;
  }
  let r = i / params.leaves;
  let leaf = i % params.leaves;
  var n = 0u;
  var c = 1.0;
  for (var d = 0u; d < params.depth; d = d + 1u) {
    let b = (leaf >> (params.depth - 1u - d)) & 1u;
    let p = probs[r * params.nodes + n];
    c = c * select(1.0 - p, p, b == 1u);
    n = 2u * n + 1u + b;
  }
  mix_out[i] = c;
}

@group(0) @binding(2) var<storage, read_write> dz_out: array<f32>;
@group(0) @binding(4) var<storage, read> dmix: array<f32>;

@compute @workgroup_size(WG)
fn fff_mixture_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.rows * params.nodes) {
    return;
  }
  let r = i / params.nodes;
  let node = i % params.nodes;
  let row = r * params.nodes;
  // node = 2^d − 1 + k at depth d; its leaves are [k·2^(D−d), (k+1)·2^(D−d)).
  let d = firstLeadingBit(node + 1u);
  let k = node + 1u - (1u << d);
  let below = params.depth - d;
  let first = k << below;
  // a: the factors from the root down to (not including) node, along first's path.
  var a = 1.0;
  var n = 0u;
  for (var e = 0u; e < d; e = e + 1u) {
    let b = (first >> (params.depth - 1u - e)) & 1u;
    let p = probs[row + n];
    a = a * select(1.0 - p, p, b == 1u);
    n = 2u * n + 1u + b;
  }
  // Σ over the node's leaves of dmix · (the factors below the node), + right, − left.
  var g = 0.0;
  let count = 1u << below;
  for (var j = 0u; j < count; j = j + 1u) {
    let leaf = first + j;
    let right = (j >> (below - 1u)) & 1u;
    var s = dmix[r * params.leaves + leaf];
    var m = 2u * node + 1u + right;
    for (var e = d + 1u; e < params.depth; e = e + 1u) {
      let b = (leaf >> (params.depth - 1u - e)) & 1u;
      let p = probs[row + m];
      s = s * select(1.0 - p, p, b == 1u);
      m = 2u * m + 1u + b;
    }
    g = g + select(-s, s, right == 1u);
  }
  let p = probs[i];
  // d p̃/dz = ±p̃(1 − p̃): p̃ = σ(z) or, leaked, 1 − σ(z).
  var grad = a * g * p * (1.0 - p) * select(1.0, -1.0, leaked(i));
  if (ACCUMULATE) {
    grad = grad + dz_out[i];
  }
  dz_out[i] = grad;
}

@group(0) @binding(1) var<storage, read> hidden: array<f32>;
@group(0) @binding(2) var<storage, read_write> gated_out: array<f32>;
@group(0) @binding(3) var<storage, read> mixw: array<f32>;

@compute @workgroup_size(WG)
fn fff_gate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  let wide = params.leaves * params.width;
  if (i >= params.rows * wide) {
    return;
  }
  gated_out[i] = hidden[i] * mixw[(i / wide) * params.leaves + (i % wide) / params.width];
}

@group(0) @binding(2) var<storage, read_write> dhidden_out: array<f32>;
@group(0) @binding(4) var<storage, read> dgated: array<f32>;
@group(0) @binding(5) var<storage, read_write> dmix_acc: array<f32>;

@compute @workgroup_size(WG)
fn fff_gate_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.rows * params.leaves) {
    return;
  }
  let c = mixw[i];
  let base = i * params.width;
  var s = 0.0;
  for (var j = 0u; j < params.width; j = j + 1u) {
    let g = dgated[base + j];
    s = s + hidden[base + j] * g;
    dhidden_out[base + j] = g * c;
  }
  dmix_acc[i] = dmix_acc[i] + s;
}

@group(0) @binding(2) var<storage, read_write> entropy_out: array<f32>;

// H(σ(z)) = p·softplus(−z) + (1−p)·softplus(z), stable for any z.
fn entropy_of(z: f32) -> f32 {
  let c = clamp(z, -Z_CLAMP, Z_CLAMP);
  let p = sigmoid(c);
  let sp = max(c, 0.0) + log(1.0 + exp(-abs(c)));
  return p * (sp - c) + (1.0 - p) * sp;
}

@compute @workgroup_size(WG)
fn fff_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = linear_index(gid, nwg);
  if (r >= params.rows) {
    return;
  }
  var s = 0.0;
  for (var n = 0u; n < params.nodes; n = n + 1u) {
    s = s + entropy_of(z_in[r * params.nodes + n]);
  }
  entropy_out[r] = s * params.inv_nodes;
}

@group(0) @binding(3) var<storage, read> dentropy: array<f32>;

@compute @workgroup_size(WG)
fn fff_entropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.rows * params.nodes) {
    return;
  }
  let z = z_in[i];
  let p = sigmoid(z);
  var grad = select(0.0, -z * p * (1.0 - p), abs(z) < Z_CLAMP);
  grad = grad * dentropy[i / params.nodes] * params.inv_nodes;
  if (ACCUMULATE) {
    grad = grad + dz_out[i];
  }
  dz_out[i] = grad;
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> node_w: array<f32>;
@group(0) @binding(4) var<storage, read> node_b: array<f32>;
@group(0) @binding(5) var<storage, read> w1: array<f32>;
@group(0) @binding(6) var<storage, read> b1: array<f32>;
@group(0) @binding(7) var<storage, read> w2: array<f32>;
@group(0) @binding(8) var<storage, read> b2: array<f32>;

var<workgroup> partial: array<f32, WG>;
var<workgroup> leaf_hidden: array<f32, MAX_LEAF_WIDTH>;

@compute @workgroup_size(WG)
fn fff_hard(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  // Every invocation of a workgroup has the same row: the returns and loops below are uniform.
  let r = wid.x + wid.y * nwg.x;
  if (r >= params.rows) {
    return;
  }
  let inputs = params.inputs;
  let xr = r * inputs;
  // The hard path: D node dot products, each a workgroup reduction.
  var n = 0u;
  for (var d = 0u; d < params.depth; d = d + 1u) {
    var s = 0.0;
    for (var i = lid; i < inputs; i = i + WG) {
      s = s + x[xr + i] * node_w[n * inputs + i];
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
      if (lid < stride) {
        partial[lid] = partial[lid] + partial[lid + stride];
      }
      workgroupBarrier();
    }
    let logit = partial[0] + node_b[n];
    workgroupBarrier();
    n = 2u * n + 1u + select(0u, 1u, logit >= 0.0);
  }
  let leaf = n - params.nodes;
  let width = params.width;
  // The leaf's hidden units: `lanes` invocations split each unit's dot product.
  let lanes = max(1u, WG / width);
  let units = WG / lanes;
  let unit = lid / lanes;
  let lane = lid % lanes;
  for (var base = 0u; base < width; base = base + units) {
    let j = base + unit;
    var s = 0.0;
    if (j < width) {
      let row = (leaf * width + j) * inputs;
      for (var i = lane; i < inputs; i = i + lanes) {
        s = s + x[xr + i] * w1[row + i];
      }
    }
    partial[lid] = s;
    workgroupBarrier();
    if (lid < units && base + lid < width) {
      var t = b1[leaf * width + base + lid];
      for (var l = 0u; l < lanes; l = l + 1u) {
        t = t + partial[lid * lanes + l];
      }
      leaf_hidden[base + lid] = max(t, 0.0);
    }
    workgroupBarrier();
  }
  let wide = params.leaves * width;
  for (var o = lid; o < params.outputs; o = o + WG) {
    var s = b2[leaf * params.outputs + o];
    let row = o * wide + leaf * width;
    for (var j = 0u; j < width; j = j + 1u) {
      s = s + w2[row + j] * leaf_hidden[j];
    }
    y[r * params.outputs + o] = s;
  }
}

// fff_hard_vec4: fff_hard with x, node_w and w1 read as vec4 (in a multiple of 4) and 4 hidden
// units per invocation: fewer loads per multiply-add, which bound the kernel on software adapters.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> node_w4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> w14: array<vec4<f32>>;

var<workgroup> partial4: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn fff_hard_vec4(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  // Every invocation of a workgroup has the same row: the returns and loops below are uniform.
  let r = wid.x + wid.y * nwg.x;
  if (r >= params.rows) {
    return;
  }
  let inputs = params.inputs / 4u;
  let xr = r * inputs;
  // The hard path: D node dot products, each a workgroup reduction.
  var n = 0u;
  for (var d = 0u; d < params.depth; d = d + 1u) {
    var s = 0.0;
    for (var i = lid; i < inputs; i = i + WG) {
      s = s + dot(x4[xr + i], node_w4[n * inputs + i]);
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
      if (lid < stride) {
        partial[lid] = partial[lid] + partial[lid + stride];
      }
      workgroupBarrier();
    }
    let logit = partial[0] + node_b[n];
    workgroupBarrier();
    n = 2u * n + 1u + select(0u, 1u, logit >= 0.0);
  }
  let leaf = n - params.nodes;
  let width = params.width;
  // The leaf's hidden units, 4 per invocation so one x load feeds 4 dot products (a software
  // adapter is bound by loads): `groups` of 4 units, `lanes` invocations split each group's sums.
  let groups = (width + 3u) / 4u;
  let lanes = max(1u, WG / groups);
  let per_pass = WG / lanes;
  let g = lid / lanes;
  let lane = lid % lanes;
  let first = leaf * width;
  let last = first + width - 1u;
  for (var base = 0u; base < groups; base = base + per_pass) {
    let q = base + g;
    var s = vec4<f32>(0.0);
    if (g < per_pass && q < groups) {
      let j0 = first + 4u * q;
      let r0 = j0 * inputs;
      let r1 = min(j0 + 1u, last) * inputs;
      let r2 = min(j0 + 2u, last) * inputs;
      let r3 = min(j0 + 3u, last) * inputs;
      for (var i = lane; i < inputs; i = i + lanes) {
        let xv = x4[xr + i];
        s = s + vec4<f32>(
          dot(xv, w14[r0 + i]),
          dot(xv, w14[r1 + i]),
          dot(xv, w14[r2 + i]),
          dot(xv, w14[r3 + i]),
        );
      }
    }
    partial4[lid] = s;
    workgroupBarrier();
    if (lid < per_pass && base + lid < groups) {
      var t = vec4<f32>(0.0);
      for (var l = 0u; l < lanes; l = l + 1u) {
        t = t + partial4[lid * lanes + l];
      }
      for (var k = 0u; k < 4u; k = k + 1u) {
        let j = 4u * (base + lid) + k;
        if (j < width) {
          leaf_hidden[j] = max(t[k] + b1[first + j], 0.0);
        }
      }
    }
    workgroupBarrier();
  }
  let wide = params.leaves * width;
  for (var o = lid; o < params.outputs; o = o + WG) {
    var s = b2[leaf * params.outputs + o];
    let row = o * wide + leaf * width;
    for (var j = 0u; j < width; j = j + 1u) {
      s = s + w2[row + j] * leaf_hidden[j];
    }
    y[r * params.outputs + o] = s;
  }
}
