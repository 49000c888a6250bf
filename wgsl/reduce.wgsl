// Segmented sum (SQUARE = false: Σx) or sum of squares (SQUARE = true: Σx²) of a flat f32 buffer:
// out[out_offset + s] = Σ over x[seg[s] .. seg[s+1]) for each of S segments (ACCUMULATE: +=).
// Used for global and per-tensor gradient norms and for summing per-row losses into metrics.
//
// Two stages, both with f32 tree reductions, so the rounding error grows with log(n), not n:
//   partial_sums: 0 x: array<f32> (flat), 1 chunks: array<vec2<u32>> (K) [start, end) of each
//                 chunk, 2 partials: array<f32> (K) written, 3 params {chunks: K}.
//                 A chunk is CHUNK = 256·16 consecutive values of one segment (the last chunk of a
//                 segment is shorter; none spans two segments). One workgroup per chunk: each
//                 invocation sums 16 values 256 apart (coalesced), then a tree over 256.
//                 Dispatch: K workgroups of 256, split over x and y above 65535.
//   segment_sums: 0 partials: array<f32> (K), 1 segment_chunks: array<u32> (S + 1), segment s
//                 owns partials [segment_chunks[s], segment_chunks[s+1]), 2 out: array<f32>
//                 written at out_offset .. out_offset + S, 3 params {segments: S, out_offset}.
//                 One workgroup per segment: strided sums of its partials, then a tree over 256.
//                 An empty segment owns no partials and gives 0.
//                 Dispatch: S workgroups of 256, split over x and y above 65535.

struct PartialParams {
  chunks: u32,
}

struct SegmentParams {
  segments: u32,
  out_offset: u32,
}

override SQUARE: bool = false;
override ACCUMULATE: bool = false;

const GROUP: u32 = 256u;
const PER_THREAD: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> chunks: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<uniform> partial_params: PartialParams;

@group(0) @binding(0) var<storage, read> partials_in: array<f32>;
@group(0) @binding(1) var<storage, read> segment_chunks: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> segment_params: SegmentParams;

var<workgroup> red: array<f32, GROUP>;

// Sum of `value` over the workgroup; the result is valid in invocation 0.
fn workgroup_sum(lane: u32, value: f32) -> f32 {
  red[lane] = value;
  workgroupBarrier();
  for (var s = GROUP / 2u; s > 0u; s = s / 2u) {
    if (lane < s) {
      red[lane] = red[lane] + red[lane + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(GROUP)
fn partial_sums(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let chunk = wid.x + wid.y * nwg.x;
  // The whole workgroup leaves together, so the barriers below stay uniform.
  if (chunk >= partial_params.chunks) {
    return;
  }
  let bounds = chunks[chunk];
  var s = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = bounds.x + k * GROUP + lane;
    if (i < bounds.y) {
      let v = x[i];
      s += select(v, v * v, SQUARE);
    }
  }
  let total = workgroup_sum(lane, s);
  if (lane == 0u) {
    partials[chunk] = total;
  }
}

@compute @workgroup_size(GROUP)
fn segment_sums(
  @builtin(local_invocation_index) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let segment = wid.x + wid.y * nwg.x;
  if (segment >= segment_params.segments) {
    return;
  }
  let first = segment_chunks[segment];
  let last = segment_chunks[segment + 1u];
  var s = 0.0;
  for (var c = first + lane; c < last; c += GROUP) {
    s += partials_in[c];
  }
  let total = workgroup_sum(lane, s);
  if (lane == 0u) {
    let o = segment_params.out_offset + segment;
    if (ACCUMULATE) {
      out[o] = out[o] + total;
    } else {
      out[o] = total;
    }
  }
}
