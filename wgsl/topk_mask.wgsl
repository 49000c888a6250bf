// Global top-k over the flat parameter buffers as a 0/1 mask, found on the GPU by radix select
// (SSAM's masks, algorithms.md §3.2): exactly k elements get 1 — those of the k largest scores,
// ties broken by the lower index — with k read from a table, never sorted on the CPU.
//
// Each element i has a u32 key: 0 for elements that are not candidates (in no segment: the
// padding between tensors; or filtered out by CANDIDATES), else bits(score) + 1, where the score
// is ≥ 0, so the f32 bits order like the scores. The score is, by VALUE: 0 values[i], 1
// |values[i]|, 2 a Philox uniform keyed (seed, stream) at step counters[0] (so every pass sees the
// same one). CANDIDATES: 0 every element in a segment, 1 those with candidate_mask[i] = 1, 2 those with
// candidate_mask[i] = 0.
//
// Entry points, in dispatch order:
//   select_begin:     prefix = 0, above = 0, remaining = k = k_table[min(counters[0] /
//                     steps_per_epoch, table_length − 1)], histogram zeroed. 1 workgroup of 256.
//   select_histogram: pass RADIX_PASS (0..3) counts the keys that agree with `prefix` on the
//                     bits above the pass's byte, by that byte (bits 31..24, 23..16, 15..8, 7..0).
//   select_pick:      walks the 256 bins from the top to the one where `remaining` falls: its
//                     byte joins `prefix`, the keys in the bins above are taken (above +=, and
//                     remaining −=), the histogram is zeroed for the next pass. 1 invocation.
//                     After 4 passes prefix = T, the k-th largest key, and `remaining` keys equal
//                     to T are still to take (0 when k = 0; k is clamped to the candidates).
//   select_count_ties:  ties[c] = #{i in chunk c : key(i) = T}.
//   select_scan_ties:   ties ← its exclusive prefix sum (1 workgroup of 256).
//   select_write:     out[i] = 1 if key(i) > T, or key(i) = T and fewer than `remaining` ties
//                     precede it, else 0; with OR_OUT out[i] = max(out[i], that).
// Chunks are CHUNK = 256·16 consecutive elements, 16 consecutive ones per invocation (so ranks of
// ties follow the index); histogram, count and write dispatch `chunks` workgroups of 256, split
// over x and y above 65535.
//
// Bindings: 0 setup (uniform), 1 state: SelectState (rw; its k_table filled by the host), 2
// counters: array<u32>, 3 segments: array<Segment> (the optimizer's table), 4 values: array<f32>
// (n; any buffer for VALUE 2), 5 candidate_mask: array<f32> (n; any buffer for CANDIDATES 0), 6 ties:
// array<u32> (chunks), 7 out: array<f32> (n). Each entry binds the prefix it uses: begin 0–2, pick
// 0–1, histogram 0–5, count 0–6, write 0–7; scan binds 0 setup and 1 ties.

//!include philox

struct Setup {
  n: u32,
  num_segments: u32,
  chunks: u32,
  steps_per_epoch: u32,
  table_length: u32,
  seed: u32,
  stream: u32,
  unused: u32,
}

struct Segment {
  start: u32,
  end: u32,
  lr_mult: f32,
  weight_decay: f32,
}

struct SelectState {
  prefix: u32,
  remaining: u32,
  above: u32,
  k: u32,
  hist: array<atomic<u32>, 256>,
  k_table: array<u32>,
}

override VALUE: u32 = 0u;
override CANDIDATES: u32 = 0u;
override RADIX_PASS: u32 = 0u;
override OR_OUT: bool = false;

const GROUP: u32 = 256u;
const PER_THREAD: u32 = 16u;
const CHUNK: u32 = GROUP * PER_THREAD;

@group(0) @binding(0) var<uniform> setup: Setup;
@group(0) @binding(1) var<storage, read_write> state: SelectState;
@group(0) @binding(2) var<storage, read> counters: array<u32>;
@group(0) @binding(3) var<storage, read> segments: array<Segment>;
@group(0) @binding(4) var<storage, read> values: array<f32>;
@group(0) @binding(5) var<storage, read> candidate_mask: array<f32>;
@group(0) @binding(6) var<storage, read_write> ties: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@group(0) @binding(1) var<storage, read_write> ties_scan: array<u32>;

var<workgroup> local_hist: array<atomic<u32>, GROUP>;
var<workgroup> scan: array<u32, GROUP>;
var<workgroup> tie_total: atomic<u32>;

fn in_segment(i: u32) -> bool {
  var lo = 0u;
  var hi = setup.num_segments;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (segments[mid].start <= i) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo > 0u && i < segments[lo - 1u].end;
}

fn key(i: u32) -> u32 {
  if (i >= setup.n || !in_segment(i)) {
    return 0u;
  }
  if (CANDIDATES == 1u && candidate_mask[i] < 0.5) {
    return 0u;
  }
  if (CANDIDATES == 2u && candidate_mask[i] >= 0.5) {
    return 0u;
  }
  var score: f32;
  if (VALUE == 0u) {
    score = values[i];
  } else if (VALUE == 1u) {
    score = abs(values[i]);
  } else {
    score = philox_uniform(philox_word(setup.seed, setup.stream, counters[0], i));
  }
  // Scores are ≥ 0 (a negative one counts as 0); +∞ and NaN bits are capped at +∞'s.
  return min(bitcast<u32>(max(score, 0.0)), 0x7F800000u) + 1u;
}

// Whether a key agrees with the prefix found so far on the bits above this pass's byte.
fn on_prefix(k: u32) -> bool {
  if (RADIX_PASS == 0u) {
    return true;
  }
  // (max: the shift stays below 32 in the pass-0 pipeline too, where this line is dead.)
  let high = 32u - 8u * max(RADIX_PASS, 1u);
  return (k >> high) == (state.prefix >> high);
}

// Exclusive prefix sum of `v` over the workgroup's invocations (scan[] then holds the inclusive).
fn exclusive_scan(lane: u32, v: u32) -> u32 {
  scan[lane] = v;
  workgroupBarrier();
  for (var offset = 1u; offset < GROUP; offset = offset * 2u) {
    var left = 0u;
    if (lane >= offset) {
      left = scan[lane - offset];
    }
    workgroupBarrier();
    scan[lane] = scan[lane] + left;
    workgroupBarrier();
  }
  return scan[lane] - v;
}

fn chunk_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(GROUP)
fn select_begin(@builtin(local_invocation_index) lane: u32) {
  atomicStore(&state.hist[lane], 0u);
  if (lane == 0u) {
    let epoch = counters[0] / max(setup.steps_per_epoch, 1u);
    let k = state.k_table[min(epoch, setup.table_length - 1u)];
    state.prefix = 0u;
    state.above = 0u;
    state.k = k;
    state.remaining = k;
  }
}

@compute @workgroup_size(GROUP)
fn select_histogram(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let chunk = chunk_of(wid, nwg);
  if (chunk >= setup.chunks) {
    return;
  }
  atomicStore(&local_hist[lane], 0u);
  workgroupBarrier();
  let shift = 24u - 8u * RADIX_PASS;
  for (var j = 0u; j < PER_THREAD; j++) {
    let k = key(chunk * CHUNK + lane * PER_THREAD + j);
    if (k != 0u && on_prefix(k)) {
      atomicAdd(&local_hist[(k >> shift) & 255u], 1u);
    }
  }
  workgroupBarrier();
  let c = atomicLoad(&local_hist[lane]);
  if (c > 0u) {
    atomicAdd(&state.hist[lane], c);
  }
}

@compute @workgroup_size(1)
fn select_pick() {
  if (setup.n == 0u) {
    return;
  }
  let shift = 24u - 8u * RADIX_PASS;
  var total = 0u;
  for (var b = 0u; b < 256u; b++) {
    total += atomicLoad(&state.hist[b]);
  }
  // Fewer candidates than asked for: take them all.
  if (state.remaining > total) {
    state.remaining = total;
  }
  let want = state.remaining;
  if (want > 0u) {
    var taken = 0u;
    var b = 255u;
    loop {
      let h = atomicLoad(&state.hist[b]);
      if (taken + h >= want || b == 0u) {
        break;
      }
      taken += h;
      b -= 1u;
    }
    state.prefix = state.prefix | (b << shift);
    state.remaining = want - taken;
    state.above = state.above + taken;
  }
  for (var b = 0u; b < 256u; b++) {
    atomicStore(&state.hist[b], 0u);
  }
}

@compute @workgroup_size(GROUP)
fn select_count_ties(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let chunk = chunk_of(wid, nwg);
  if (chunk >= setup.chunks) {
    return;
  }
  if (lane == 0u) {
    atomicStore(&tie_total, 0u);
  }
  workgroupBarrier();
  let t = state.prefix;
  var c = 0u;
  for (var j = 0u; j < PER_THREAD; j++) {
    let k = key(chunk * CHUNK + lane * PER_THREAD + j);
    if (k != 0u && k == t) {
      c += 1u;
    }
  }
  atomicAdd(&tie_total, c);
  workgroupBarrier();
  if (lane == 0u) {
    ties[chunk] = atomicLoad(&tie_total);
  }
}

@compute @workgroup_size(GROUP)
fn select_scan_ties(@builtin(local_invocation_index) lane: u32) {
  var running = 0u;
  for (var start = 0u; start < setup.chunks; start += GROUP) {
    let c = start + lane;
    var v = 0u;
    if (c < setup.chunks) {
      v = ties_scan[c];
    }
    let before = exclusive_scan(lane, v);
    let block = scan[GROUP - 1u];
    if (c < setup.chunks) {
      ties_scan[c] = running + before;
    }
    running += block;
    workgroupBarrier();
  }
}

@compute @workgroup_size(GROUP)
fn select_write(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let chunk = chunk_of(wid, nwg);
  if (chunk >= setup.chunks) {
    return;
  }
  let t = state.prefix;
  let wanted = state.remaining;
  let first = chunk * CHUNK + lane * PER_THREAD;
  var keys: array<u32, PER_THREAD>;
  var c = 0u;
  for (var j = 0u; j < PER_THREAD; j++) {
    keys[j] = key(first + j);
    if (keys[j] != 0u && keys[j] == t) {
      c += 1u;
    }
  }
  var rank = exclusive_scan(lane, c) + ties[chunk];
  for (var j = 0u; j < PER_THREAD; j++) {
    let i = first + j;
    if (i >= setup.n) {
      break;
    }
    let k = keys[j];
    var chosen = false;
    if (wanted > 0u && k != 0u) {
      if (k > t) {
        chosen = true;
      } else if (k == t) {
        chosen = rank < wanted;
        rank += 1u;
      }
    }
    let m = select(0.0, 1.0, chosen);
    if (OR_OUT) {
      out[i] = max(out[i], m);
    } else {
      out[i] = m;
    }
  }
}
