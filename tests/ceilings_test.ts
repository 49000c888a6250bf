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

Deno.test("fma_peak f16: the recurrences compute in f16, exactly as float64 stepped with f16 rounding", async () => {
  const { gpu, kernels } = await testGpu();
  assert.ok(gpu.has("shader-f16"), "the test adapter (llvmpipe) has shader-f16");
  for (const [invocations, iterations] of [[1, 1], [33, 7], [257, 130]] as const) {
    const out = poisoned(gpu, "fma f16 out", invocations);
    submitDispatches(gpu, [
      await fmaPeak(kernels, {
        out,
        invocations,
        iterations,
        b: 0.9375,
        c: 0.125,
        precision: "f16",
      }),
    ]);
    const got = await gpu.readF32(out, invocations);
    // WGSL's fma may round once (fused) or after the product and the sum: the GPU must match one
    // of the two f16-stepped references exactly (the f32 sum of 32 f16 values is exact here).
    const maxDiff = (ref: Float64Array) =>
      got.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
    const [fused, unfused] = [true, false].map((f) =>
      maxDiff(fmaPeakRef(invocations, iterations, 0.9375, 0.125, Math.f16round, f))
    ) as [number, number];
    assert.ok(
      Math.min(fused, unfused) <= 1e-6,
      `fma_peak f16 invocations=${invocations} iterations=${iterations}: max diff ${fused} from fused f16, ${unfused} from unfused f16`,
    );
    // And it is f16 arithmetic, not f32: after enough steps the two differ.
    if (iterations === 130) {
      const diff = maxDiff(fmaPeakRef(invocations, iterations, 0.9375, 0.125));
      assert.ok(diff > 1e-2, `the f16 probe computed like f32 (max diff ${diff})`);
    }
    out.destroy();
  }
});
