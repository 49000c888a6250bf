import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import {
  LAYERNORM_EPS,
  layernormBackwardInput,
  layernormBackwardParams,
  layernormForward,
} from "../core/ops/layernorm.ts";
import { layernormBackwardRef, layernormForwardRef } from "./reference/layernorm.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, normalF32, uniformF32 } from "./helpers/random.ts";

// (1, 1) has x̂ = 0 (y = β); C = 7, 33, 130, 257 are not multiples of any lane count, C = 4099
// makes one workgroup loop 17 times over a row.
const SHAPES: [number, number][] = [[1, 1], [1, 7], [7, 33], [33, 130], [5, 257], [3, 4099]];
const EPS = LAYERNORM_EPS;

/** x = offset + std·N(0, 1), γ in [−1.5, 1.5], β in [−0.5, 0.5]. */
function inputs(rows: number, cols: number, seed: number, offset = 0.3, std = 1.7) {
  const x = normalF32(rows * cols, seed, std).map((v) => v + offset);
  return {
    x,
    gamma: uniformF32(cols, seed + 1, -1.5, 1.5),
    beta: uniformF32(cols, seed + 2, -0.5, 0.5),
    dy: uniformF32(rows * cols, seed + 3, -1, 1),
  };
}

Deno.test("layernorm reference backward matches central finite differences", () => {
  for (
    const [rows, cols, offset, std] of [[1, 1, 0, 1], [3, 7, 0.3, 1.7], [2, 33, -1, 0.6], [
      2,
      9,
      100,
      0.1,
    ]] as const
  ) {
    const { x, gamma, beta, dy: w } = inputs(rows, cols, 11 * rows + cols, offset, std);
    const [xs, gs, bs] = [f64(x), f64(gamma), f64(beta)];
    const loss = () => dot(w, layernormForwardRef(xs, gs, bs, rows, cols, EPS).y);
    const ref = layernormBackwardRef(xs, gs, w, rows, cols, EPS);
    // Central differences in float64 with h = 1e-6: truncation ~h²·|L'''| and rounding
    // ~1e-16·|L|/h stay below 1e-7 for these sizes (rstd ≤ 10).
    const tol = { atol: 1e-7, rtol: 1e-6 };
    const shape = `M=${rows} C=${cols} offset=${offset}`;
    assertClose(ref.dx, numericGradient(loss, xs), { ...tol, label: `layernorm ref dx ${shape}` });
    assertClose(ref.dgamma, numericGradient(loss, gs), {
      ...tol,
      label: `layernorm ref dgamma ${shape}`,
    });
    assertClose(ref.dbeta, numericGradient(loss, bs), {
      ...tol,
      label: `layernorm ref dbeta ${shape}`,
    });
  }
});

/** Runs the forward kernel on f32 inputs; returns y, mean and rstd read back. */
async function gpuForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  rows: number,
  cols: number,
  threadsPerRow?: number,
) {
  const { gpu, kernels } = await testGpu();
  const buffers = {
    x: gpu.storage("layernorm x", x),
    gamma: gpu.storage("layernorm gamma", gamma),
    beta: gpu.storage("layernorm beta", beta),
    y: poisoned(gpu, "layernorm y", rows * cols),
    mean: poisoned(gpu, "layernorm mean", rows),
    rstd: poisoned(gpu, "layernorm rstd", rows),
  };
  submitDispatches(gpu, [
    await layernormForward(kernels, { ...buffers, rows, cols, threadsPerRow }),
  ]);
  const out = {
    y: await gpu.readF32(buffers.y, rows * cols),
    mean: await gpu.readF32(buffers.mean, rows),
    rstd: await gpu.readF32(buffers.rstd, rows),
  };
  for (const b of Object.values(buffers)) b.destroy();
  return out;
}

/** Compares a forward run with the float64 reference. */
function checkForward(
  got: { y: Float32Array; mean: Float32Array; rstd: Float32Array },
  ref: { y: Float64Array; mean: Float64Array; rstd: Float64Array },
  tol: { atol: number; rtol: number },
  label: string,
) {
  assertClose(got.y, ref.y, { ...tol, label: `layernorm forward y ${label}` });
  assertClose(got.mean, ref.mean, { ...tol, label: `layernorm forward mean ${label}` });
  assertClose(got.rstd, ref.rstd, { ...tol, label: `layernorm forward rstd ${label}` });
}

Deno.test("layernorm forward: y, mean, rstd against float64", async () => {
  for (const [rows, cols] of SHAPES) {
    const { x, gamma, beta } = inputs(rows, cols, 100 + rows * cols);
    const ref = layernormForwardRef(x, gamma, beta, rows, cols, EPS);
    // f32 tree sums over ≤ 4099 values of |x| ≤ ~8: relative error of μ and var ~1e-6, so
    // |y| ≤ ~6 is off by a few 1e-6.
    checkForward(await gpuForward(x, gamma, beta, rows, cols), ref, {
      atol: 2e-5,
      rtol: 1e-4,
    }, `M=${rows} C=${cols}`);
  }
});

Deno.test("layernorm forward: large common offset (mean 100, std 0.1) stays accurate", async () => {
  for (const [rows, cols] of [[33, 130], [3, 4099]] as const) {
    const { x, gamma, beta } = inputs(rows, cols, 7 + cols, 100, 0.1);
    const ref = layernormForwardRef(x, gamma, beta, rows, cols, EPS);
    // The kernel subtracts mean(x − μ) from x − μ, so the rounding of μ (½ulp(100) ≈ 3.8e-6, times
    // r ≈ 10 in x̂) drops out of y; what is left is the f32 error of d² sums, as for offset 0.
    // Only the stored mean carries μ's rounding (relative ~1e-7).
    const tol = { atol: 2e-5, rtol: 1e-4 };
    checkForward(
      await gpuForward(x, gamma, beta, rows, cols),
      ref,
      tol,
      `M=${rows} C=${cols} offset=100`,
    );

    // The test can tell: a one-pass variance E[x²] − μ² in f32 cancels catastrophically here.
    const onePass = new Float64Array(rows);
    for (let m = 0; m < rows; m++) {
      let s = 0;
      let q = 0;
      for (let j = 0; j < cols; j++) {
        const v = x[m * cols + j]!;
        s = Math.fround(s + v);
        q = Math.fround(q + Math.fround(v * v));
      }
      const mu = Math.fround(s / cols);
      const variance = Math.max(0, Math.fround(Math.fround(q / cols) - Math.fround(mu * mu)));
      onePass[m] = 1 / Math.sqrt(variance + EPS);
    }
    const worst = Math.max(...onePass.map((r, m) => Math.abs(r - ref.rstd[m]!) / ref.rstd[m]!));
    assert.ok(worst > 1e-2, `one-pass rstd error ${worst} should exceed the tolerance`);
  }
});

Deno.test("layernorm forward: every lanes-per-row width, and more than 65535 workgroups", async () => {
  for (const threads of [1, 2, 8, 32, 128, 256]) {
    const [rows, cols] = [37, 130];
    const { x, gamma, beta } = inputs(rows, cols, threads);
    const ref = layernormForwardRef(x, gamma, beta, rows, cols, EPS);
    checkForward(await gpuForward(x, gamma, beta, rows, cols, threads), ref, {
      atol: 2e-5,
      rtol: 1e-4,
    }, `M=${rows} C=${cols} threadsPerRow=${threads}`);
  }
  // One row per workgroup and 65 537 rows: the grid splits over x and y.
  const [rows, cols] = [65_537, 3];
  const { x, gamma, beta } = inputs(rows, cols, 5);
  const ref = layernormForwardRef(x, gamma, beta, rows, cols, EPS);
  checkForward(await gpuForward(x, gamma, beta, rows, cols, 256), ref, {
    atol: 2e-5,
    rtol: 1e-4,
  }, `M=${rows} C=${cols} threadsPerRow=256 (x/y grid)`);
});

/** Uploads x, γ, dy and the reference's μ and rstd (as f32) for a backward run. */
async function backwardBuffers(
  rows: number,
  cols: number,
  seed: number,
  offset?: number,
  std?: number,
) {
  const { gpu } = await testGpu();
  const data = inputs(rows, cols, seed, offset, std);
  const saved = layernormForwardRef(data.x, data.gamma, data.beta, rows, cols, EPS);
  const ref = layernormBackwardRef(data.x, data.gamma, data.dy, rows, cols, EPS);
  const buffers = {
    x: gpu.storage("layernorm x", data.x),
    gamma: gpu.storage("layernorm gamma", data.gamma),
    dy: gpu.storage("layernorm dy", data.dy),
    mean: gpu.storage("layernorm mean", new Float32Array(saved.mean)),
    rstd: gpu.storage("layernorm rstd", new Float32Array(saved.rstd)),
  };
  const destroy = () => Object.values(buffers).forEach((b) => b.destroy());
  return { gpu, buffers, ref, destroy };
}

// Backward cases: the forward shapes, a tall one for the column reduction of backward_params, and
// a large offset (rstd ≈ 10 scales dx by 10).
const BACKWARD_CASES: [number, number, number?, number?][] = [
  ...SHAPES,
  [2049, 40],
  [9, 300, 100, 0.1],
];

for (const accumulate of [false, true]) {
  const mode = accumulate ? "accumulate" : "overwrite";
  Deno.test(`layernorm backward_input ${mode} (dx ${accumulate ? "+=" : "="}) against float64`, async () => {
    const { kernels } = await testGpu();
    for (const [rows, cols, offset, std] of BACKWARD_CASES) {
      const { gpu, buffers, ref, destroy } = await backwardBuffers(
        rows,
        cols,
        3 * cols,
        offset,
        std,
      );
      const initial = uniformF32(rows * cols, rows + cols, -2, 2);
      const dx = accumulate
        ? gpu.storage("layernorm dx", initial)
        : poisoned(gpu, "dx", rows * cols);
      submitDispatches(gpu, [
        await layernormBackwardInput(kernels, { ...buffers, dx, rows, cols, accumulate }),
      ]);
      const expected = accumulate ? ref.dx.map((v, i) => v + initial[i]!) : ref.dx;
      // dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)) cancels terms of size r·|dy⊙γ| ≤ 1.5r; their f32
      // error is ~1e-6·r. With offset 100, x̂ from the saved f32 μ is off by up to
      // ½ulp(100)·r ≈ 3.8e-5, times r·|mean(dx̂⊙x̂)| ≲ 5: up to 2e-4 = 2e-5·r.
      const r = std === undefined ? 1 : 1 / std;
      assertClose(await gpu.readF32(dx, rows * cols), expected, {
        atol: 2e-5 * r,
        rtol: 1e-4,
        label: `layernorm backward_input ${mode} M=${rows} C=${cols}${
          offset === undefined ? "" : ` offset=${offset}`
        }`,
      });
      dx.destroy();
      destroy();
    }
  });

  Deno.test(`layernorm backward_params ${mode} (dγ, dβ ${accumulate ? "+=" : "="}) against float64`, async () => {
    const { kernels } = await testGpu();
    for (const [rows, cols, offset, std] of BACKWARD_CASES) {
      const { gpu, buffers, ref, destroy } = await backwardBuffers(
        rows,
        cols,
        5 * cols,
        offset,
        std,
      );
      const g0 = uniformF32(cols, cols + 1, -2, 2);
      const b0 = uniformF32(cols, cols + 2, -2, 2);
      const dgamma = accumulate ? gpu.storage("dgamma", g0) : poisoned(gpu, "dgamma", cols);
      const dbeta = accumulate ? gpu.storage("dbeta", b0) : poisoned(gpu, "dbeta", cols);
      submitDispatches(gpu, [
        await layernormBackwardParams(kernels, {
          x: buffers.x,
          mean: buffers.mean,
          rstd: buffers.rstd,
          dy: buffers.dy,
          dgamma,
          dbeta,
          rows,
          cols,
          accumulate,
        }),
      ]);
      const eg = accumulate ? ref.dgamma.map((v, i) => v + g0[i]!) : ref.dgamma;
      const eb = accumulate ? ref.dbeta.map((v, i) => v + b0[i]!) : ref.dbeta;
      // Sums over M rows of terms ≤ ~5 in size: f32 error ~1e-7·Σ|terms| ≤ ~1e-3 at M = 2049. With
      // offset 100, x̂ from the saved f32 μ is off by up to ½ulp(100)·r ≈ 3.8e-5 per term, so dγ
      // over 9 rows with |dy| ≤ 1 by up to 3.4e-4 (a limit of saving μ in f32, not of the kernel).
      const label = `M=${rows} C=${cols}${offset === undefined ? "" : ` offset=${offset}`}`;
      const atol = 2e-6 * rows + 1e-5;
      assertClose(await gpu.readF32(dgamma, cols), eg, {
        atol: offset === undefined ? atol : 5e-4,
        rtol: 1e-4,
        label: `layernorm backward_params dgamma ${mode} ${label}`,
      });
      assertClose(await gpu.readF32(dbeta, cols), eb, {
        atol,
        rtol: 1e-4,
        label: `layernorm backward_params dbeta ${mode} ${label}`,
      });
      dgamma.destroy();
      dbeta.destroy();
      destroy();
    }
  });
}

Deno.test("layernorm bindings reject bad shapes and short buffers", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("layernorm small", 16);
  const args = { x: b, gamma: b, beta: b, y: b, mean: b, rstd: b };
  await assert.rejects(
    () => layernormForward(kernels, { ...args, rows: 0, cols: 4 }),
    (e: Error) =>
      e instanceof RangeError && /rows must be a positive integer, got 0/.test(e.message),
  );
  await assert.rejects(
    () => layernormForward(kernels, { ...args, rows: 2, cols: 4 }),
    (e: Error) =>
      e instanceof RangeError && /buffer x .* needs 8 f32 values \(32 bytes\)/.test(e.message),
  );
  await assert.rejects(
    () => layernormForward(kernels, { ...args, rows: 1, cols: 4, threadsPerRow: 3 }),
    (e: Error) => e instanceof RangeError && /threadsPerRow .* got 3/.test(e.message),
  );
  b.destroy();
});

Deno.test("layernorm in a plan: γ and β freeze independently (the other's gradient is still computed)", async () => {
  const { gpu, kernels } = await testGpu();
  const { Graph } = await import("../core/graph/graph.ts");
  const { labelLoss, layerNorm, linear } = await import("../core/graph/nn.ts");
  const { builtinOps } = await import("../core/graph/rules.ts");
  const { ModelPlan } = await import("../core/train/plan.ts");
  const { createCounters } = await import("../core/gpu/counters.ts");
  const { encodeSteps, dispatchPhase } = await import("../core/train/step.ts");
  const { seededRandom } = await import("../core/util/random.ts");
  const batch = 6;
  const grads = async (frozen: (name: string) => boolean) => {
    const scope = gpu.scope("layernorm freeze");
    const k = kernels.withGpu(scope);
    const g = new Graph(batch);
    const x = g.input("x", 9);
    const logits = linear(g, layerNorm(g, linear(g, x, "fc", { out: 7 }), "ln"), "head", {
      out: 3,
    });
    const { loss, correct } = labelLoss(g, "cross-entropy", logits);
    g.addLoss(loss, 1, { main: true, correct });
    const plan = await ModelPlan.build({
      gpu: scope,
      kernels: k,
      graph: g,
      ops: builtinOps(),
      counters: createCounters(scope),
      randomCounter: 2,
      seed: 1,
      frozen,
    });
    // The same seeded weights in every build.
    scope.write(plan.params, plan.layout.initialValues(seededRandom(11)));
    scope.write(plan.x, uniformF32(batch * 9, 5, -1, 1));
    scope.write(plan.labels, Uint32Array.from({ length: batch }, (_, i) => i % 3));
    const encoder = scope.device.createCommandEncoder();
    encodeSteps(encoder, [
      { kind: "clear", label: "zero", buffer: plan.grads },
      dispatchPhase("pass", [...plan.trainForward, ...plan.backward]),
    ]);
    scope.submit([encoder.finish()]);
    const all = await scope.readF32(plan.grads);
    // A frozen parameter lies outside the gradient buffer: it has no gradient at all.
    const seg = (name: string) => {
      const s = plan.layout.segments.find((q) => q.param.name === name)!;
      return s.offset < plan.layout.trainableTotal
        ? all.slice(s.offset, s.offset + s.size)
        : undefined;
    };
    const out = { gamma: seg("ln.weight"), beta: seg("ln.bias") };
    scope.dispose();
    return out;
  };
  const both = await grads(() => false);
  const gammaFrozen = await grads((n) => n === "ln.weight");
  const betaFrozen = await grads((n) => n === "ln.bias");
  assert.ok(both.gamma!.some((v) => v !== 0) && both.beta!.some((v) => v !== 0));
  assert.deepStrictEqual([...gammaFrozen.beta!], [...both.beta!], "dβ with γ frozen");
  assert.strictEqual(gammaFrozen.gamma, undefined, "frozen γ gets no gradient");
  assert.deepStrictEqual([...betaFrozen.gamma!], [...both.gamma!], "dγ with β frozen");
  assert.strictEqual(betaFrozen.beta, undefined, "frozen β gets no gradient");
});
