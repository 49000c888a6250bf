import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { mixup, mixupLambdas } from "../core/ops/mixup.ts";
import { seededRandom } from "../core/util/random.ts";
import { mixupRef } from "./reference/mixup.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, poisonedU32, testGpu } from "./helpers/gpu.ts";
import { integers, uniformF32 } from "./helpers/random.ts";

Deno.test("mixup: rows mixed with the flipped batch by the λ of the current step, labels paired", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [batch, features] of [[1, 7], [7, 33], [130, 257]] as const) {
    const x = uniformF32(batch * features, batch + features, -2, 2);
    const labels = integers(batch, 10, batch);
    const table = Float32Array.from([0.9, 0.31, 0.62]);
    const step = 1;
    const xb = gpu.storage("mixup x", x);
    const lb = gpu.storage("mixup labels", labels);
    const l2 = poisonedU32(gpu, "mixup labels2", batch);
    const lambdas = gpu.storage("mixup lambdas", table);
    const counters = gpu.storage("counters", Uint32Array.from([5, step, 0, 0]));
    const lambdaOut = poisoned(gpu, "mixup lambda", 1);
    submitDispatches(gpu, [
      await mixup(kernels, {
        x: xb,
        labels: lb,
        labels2: l2,
        lambdas,
        tableLength: 3,
        counters,
        counterIndex: 1,
        lambdaOut,
        batch,
        features,
      }),
    ]);
    const expected = mixupRef(x, labels, batch, features, table[step]!);
    assertClose(await gpu.readF32(xb, batch * features), expected.x, {
      atol: 1e-6,
      rtol: 1e-6,
      label: `mixup B=${batch} D=${features}`,
    });
    assert.deepStrictEqual(Array.from(await gpu.readU32(l2, batch)), expected.labels2);
    assert.strictEqual((await gpu.readF32(lambdaOut, 1))[0], table[step]);
    for (const b of [xb, lb, l2, lambdas, counters, lambdaOut]) b.destroy();
  }
});

Deno.test("mixup λ table: Beta(α, α) draws in (0, 1) with mean 1/2 and variance 1/(4(2α+1))", () => {
  for (const alpha of [0.2, 0.8, 2]) {
    const n = 20000;
    const l = mixupLambdas(n, alpha, seededRandom(7));
    assert.ok(l.every((v) => v >= 0 && v <= 1), "λ in [0, 1]");
    const mean = l.reduce((s, v) => s + v, 0) / n;
    const variance = l.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    const expectedVar = 1 / (4 * (2 * alpha + 1));
    // Standard errors: sd/√n for the mean, about sd²·√(2/n) for the variance.
    assert.ok(Math.abs(mean - 0.5) < 5 * Math.sqrt(expectedVar / n), `α=${alpha}: mean ${mean}`);
    assert.ok(
      Math.abs(variance - expectedVar) < 0.05 * expectedVar + 5 * expectedVar * Math.sqrt(2 / n),
      `α=${alpha}: variance ${variance} vs ${expectedVar}`,
    );
  }
  assert.throws(() => mixupLambdas(3, 0, seededRandom(1)), /mixup α must be > 0/);
});
