import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { advanceCounters, COUNTER_COUNT, createCounters } from "../core/gpu/counters.ts";
import { testGpu } from "./helpers/gpu.ts";
import { integers } from "./helpers/random.ts";

Deno.test("counters: advance adds each increment to its counter, repeatedly, on the GPU", async () => {
  const { gpu, kernels } = await testGpu();
  const counters = createCounters(gpu);
  const start = integers(COUNTER_COUNT, 1000, 17);
  gpu.write(counters, start);
  const increments = Array.from(integers(COUNTER_COUNT, 5, 3), (v) => v + 1);
  const d = await advanceCounters(kernels, counters, Object.fromEntries(increments.entries()));
  const times = 3;
  submitDispatches(gpu, Array(times).fill(d));
  const got = await gpu.readU32(counters);
  assert.deepStrictEqual(
    Array.from(got),
    Array.from(start, (s, i) => s + times * increments[i]!),
  );
  assert.throws(() => advanceCounters(kernels, counters, { 9: 1 }), /counter index 9/);
  counters.destroy();
});
