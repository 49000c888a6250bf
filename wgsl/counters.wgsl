// Step counters kept on the GPU, so that several training steps can be encoded in one submission
// without CPU writes between them: counters[i] += increments[i] for i < 8, one invocation.
// The trainer's counters (core/counters.ts): 0 optimizer steps taken, 1 micro-batch within the
// epoch (the data cursor), 2 micro-batches in all (the key of per-step random streams).
//   advance: bindings 0 counters: array<u32> (8), 1 params: uniform { increments: 2 × vec4<u32> }
// Dispatch: 1 workgroup of 1.

struct CounterParams {
  increments: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read_write> counters: array<u32>;
@group(0) @binding(1) var<uniform> params: CounterParams;

@compute @workgroup_size(1)
fn advance() {
  for (var i = 0u; i < 8u; i = i + 1u) {
    counters[i] = counters[i] + params.increments[i / 4u][i % 4u];
  }
}
