import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { copy, fmaFlops, fmaPeak } from "../core/ops/ceilings.ts";
import { fmaPeakRef } from "./reference/ceilings.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";

Deno.test("fma_peak: every invocation's recurrence sum matches float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [invocations, iterations] of [[1, 1], [33, 7], [257, 130]] as const) {
    const out = poisoned(gpu, "fma out", invocations);
    submitDispatches(gpu, [
      await fmaPeak(kernels, { out, invocations, iterations, b: 0.9375, c: 0.125 }),
    ]);
    // A contracting recurrence (|b| < 1): f32 rounding stays bounded by a few ulps of each chain.
    assertClose(
      await gpu.readF32(out, invocations),
      fmaPeakRef(invocations, iterations, 0.9375, 0.125),
      {
        atol: 1e-4,
        rtol: 1e-5,
        label: `fma_peak invocations=${invocations} iterations=${iterations}`,
      },
    );
    out.destroy();
  }
  assert.strictEqual(fmaFlops(256, 1000), 2 * 4 * 8 * 256 * 1000);
});

Deno.test("copy: out equals x exactly, vec4 by vec4", async () => {
  const { gpu, kernels } = await testGpu();
  for (const vec4s of [1, 7, 257, 70001]) {
    const data = uniformF32(4 * vec4s, vec4s, -5, 5);
    const x = gpu.storage("copy x", data);
    const out = poisoned(gpu, "copy out", 4 * vec4s);
    submitDispatches(gpu, [await copy(kernels, { x, out, vec4s })]);
    assert.deepStrictEqual(await gpu.readF32(out, 4 * vec4s), data, `copy vec4s=${vec4s}`);
    x.destroy();
    out.destroy();
  }
});
