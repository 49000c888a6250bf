/**
 * How fast a model infers, measured as the bench measures (core/bench/timing.ts: work encoded back
 * to back in one submission, one wait at the end, median of repeats): the latency of one forward
 * pass at batch 1 (many passes in a row, so the host's ~10 ms wait for the GPU is not counted;
 * the round trip of one pass submitted and read back is reported beside it), and the throughput
 * of forward passes at a large batch. The inputs are fixed random values: the kernels' time does
 * not depend on them.
 *
 * @module
 */

import { type Gpu, storageArray } from "../gpu/device.ts";
import { encode } from "../gpu/kernels.ts";
import { median, timeGpu } from "../bench/timing.ts";
import type { ModelPlan } from "../train/plan.ts";
import { seededRandom } from "../util/random.ts";

/** Inference speed. */
export interface SpeedResult {
  /** Milliseconds per forward pass at batch 1, passes back to back on the GPU. */
  latency_ms: number;
  /** Milliseconds from submitting one batch-1 pass to reading its result back. */
  roundtrip_ms: number;
  /** Samples per second of forward passes at `throughput_batch`. */
  throughput: number;
  throughput_batch: number;
}

/** Fills the plan's input with random values in [−1, 1) and refreshes its f16 weights. */
function prepare(gpu: Gpu, plan: ModelPlan): void {
  const n = plan.x.size / (plan.precision === "f16" ? 2 : 4);
  const random = seededRandom(7);
  gpu.write(
    plan.x,
    storageArray(Float32Array.from({ length: n }, () => 2 * random() - 1), plan.precision),
  );
  const encoder = gpu.device.createCommandEncoder({ label: "speed: refresh weights" });
  const pass = encoder.beginComputePass();
  encode(pass, plan.refreshWeights);
  pass.end();
  gpu.submit([encoder.finish()]);
}

/** Seconds (median of `repeats`) of `times` forward passes of `plan` in one submission. */
async function forwardSeconds(
  gpu: Gpu,
  plan: ModelPlan,
  rows: number,
  times: number,
  repeats: number,
) {
  const forward = await plan.evalForward(rows);
  return await timeGpu(
    gpu,
    (encoder) => {
      const pass = encoder.beginComputePass({ label: `speed: ${times} forwards` });
      for (let i = 0; i < times; i++) encode(pass, forward);
      pass.end();
    },
    plan.lossRows,
    repeats,
  );
}

/**
 * Measures `single` (a plan of batch 1) and `large` (a plan of a large batch), each run sized to
 * about `seconds` of GPU time (so the one wait per run costs a few percent).
 */
export async function measureSpeed(
  gpu: Gpu,
  single: ModelPlan,
  large: { plan: ModelPlan; batch: number },
  seconds = 0.3,
): Promise<SpeedResult> {
  prepare(gpu, single);
  prepare(gpu, large.plan);
  // A first estimate sizes the runs so each takes about `seconds`.
  const once = await forwardSeconds(gpu, single, 1, 4, 1) / 4;
  const times = Math.max(4, Math.min(2000, Math.round(seconds / Math.max(once, 1e-6))));
  const latency = await forwardSeconds(gpu, single, 1, times, 3) / times;
  const forward = await single.evalForward(1);
  const trips: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    const encoder = gpu.device.createCommandEncoder({ label: "speed: round trip" });
    const pass = encoder.beginComputePass();
    encode(pass, forward);
    pass.end();
    gpu.submit([encoder.finish()]);
    await gpu.read(single.lossRows, 4);
    trips.push(performance.now() - start);
  }
  const batch = large.batch;
  const bigOnce = await forwardSeconds(gpu, large.plan, batch, 1, 1);
  const bigTimes = Math.max(1, Math.min(500, Math.round(seconds / Math.max(bigOnce, 1e-6))));
  const big = await forwardSeconds(gpu, large.plan, batch, bigTimes, 3);
  return {
    latency_ms: latency * 1000,
    roundtrip_ms: median(trips),
    throughput: (bigTimes * batch) / big,
    throughput_batch: batch,
  };
}
