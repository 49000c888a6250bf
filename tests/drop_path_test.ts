/**
 * drop_path (stochastic depth, wgsl/drop_path.wgsl): the per-row mask bit-exact against the
 * Philox reference, forward and backward against float64 at sizes that are not tile multiples
 * with poisoned outputs, the reference backward against finite differences, the keep rate and
 * scaling within statistical bounds, and the linear rates over depth. The op inside a model, its
 * gradients against finite differences with the GPU's mask, is in tests/model_grad_test.ts.
 */

import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { dropPathBackward, dropPathForward, dropPathScales } from "../core/ops/drop_path.ts";
import { dropPathRates } from "../core/graph/nn.ts";
import { dropPathRef, dropPathScalesRef } from "./reference/drop_path.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { dot, numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { f64, uniformF32 } from "./helpers/random.ts";

const SEED = 0x0d0c0b0a;
const STREAM = 5;
const COUNTERS = new Uint32Array([3, 1, 777, 0]);
const STEP_INDEX = 2;
const key = { seed: SEED, stream: STREAM, step: COUNTERS[STEP_INDEX]! };

/** The GPU's per-row scales for `rows` samples at drop probability p. */
async function scalesOnGpu(rows: number, p: number, counters = COUNTERS): Promise<Float32Array> {
  const { gpu, kernels } = await testGpu();
  const scales = poisoned(gpu, "drop_path scales", rows);
  const ctr = gpu.storage("drop_path counters", counters);
  const d = await dropPathScales(kernels, {
    rows,
    cols: 1,
    p,
    scales,
    seed: SEED,
    stream: STREAM,
    counters: ctr,
    counterIndex: STEP_INDEX,
  });
  submitDispatches(gpu, [d]);
  const out = await gpu.readF32(scales, rows);
  scales.destroy();
  ctr.destroy();
  return out;
}

Deno.test("drop_path reference: backward equals finite differences of the forward", () => {
  const rows = 9;
  const cols = 5;
  const scales = dropPathScalesRef(rows, 0.4, key);
  const x = f64(uniformF32(rows * cols, 1));
  const w = f64(uniformF32(rows * cols, 2));
  const numeric = numericGradient((v) => dot(w, dropPathRef(v, scales)), x);
  assertClose(dropPathRef(w, scales), numeric, {
    atol: 1e-7,
    rtol: 1e-6,
    label: "drop_path reference backward vs finite differences",
  });
  assert.ok(scales.some((s) => s === 0) && scales.some((s) => s > 1), "a row kept and one dropped");
});

Deno.test("drop_path_scales: bit-exact against the Philox reference; another step draws another mask", async () => {
  for (const rows of [1, 7, 257, 70_001]) {
    for (const p of [0.1, 0.5]) {
      const got = await scalesOnGpu(rows, p);
      assert.deepStrictEqual(
        Array.from(got),
        Array.from(dropPathScalesRef(rows, p, key)),
        `drop_path_scales rows=${rows} p=${p}`,
      );
    }
  }
  const next = COUNTERS.slice();
  next[STEP_INDEX]! += 1;
  const a = await scalesOnGpu(4099, 0.5);
  const b = await scalesOnGpu(4099, 0.5, next);
  const changed = a.filter((v, r) => v !== b[r]).length;
  assert.ok(changed > 4099 / 4, `a new step changed only ${changed} of 4099 rows`);
});

Deno.test("drop_path forward and backward: y and dx scale each row, ACCUMULATE adds", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [rows, cols] of [[1, 1], [7, 33], [130, 257]] as const) {
    const n = rows * cols;
    const p = 0.3;
    const scales = dropPathScalesRef(rows, p, key);
    const scalesBuf = gpu.storage("scales", Float32Array.from(scales));
    const x = uniformF32(n, rows + cols, -2, 2);
    const xBuf = gpu.storage("x", x);
    const y = poisoned(gpu, "y", n);
    const label = `drop_path rows=${rows} cols=${cols}`;
    const shape = { rows, cols, p, scales: scalesBuf };
    submitDispatches(gpu, [await dropPathForward(kernels, { ...shape, x: xBuf, y })]);
    assertClose(await gpu.readF32(y, n), dropPathRef(x, scales), {
      atol: 0,
      rtol: 1e-7,
      label: `${label} forward`,
    });
    const dx = poisoned(gpu, "dx", n);
    submitDispatches(gpu, [await dropPathBackward(kernels, { ...shape, dy: xBuf, dx })]);
    assertClose(await gpu.readF32(dx, n), dropPathRef(x, scales), {
      atol: 0,
      rtol: 1e-7,
      label: `${label} backward`,
    });
    const init = uniformF32(n, 3 * n + 1, -1, 1);
    const acc = gpu.storage("dx accumulated", init);
    submitDispatches(gpu, [
      await dropPathBackward(kernels, { ...shape, dy: xBuf, dx: acc, accumulate: true }),
    ]);
    assertClose(await gpu.readF32(acc, n), dropPathRef(x, scales, init), {
      atol: 1e-7,
      rtol: 1e-6,
      label: `${label} backward ACCUMULATE`,
    });
    for (const b of [scalesBuf, xBuf, y, dx, acc]) b.destroy();
  }
});

Deno.test("drop_path: keep rate 1 − p and scale 1/(1 − p) per sample, the mean preserved, for 2^16 samples", async () => {
  const rows = 1 << 16;
  for (const p of [0.1, 0.5]) {
    const scales = await scalesOnGpu(rows, p);
    const label = `drop_path rows=${rows} p=${p}`;
    const kept = scales.filter((s) => s !== 0);
    assert.ok(
      kept.every((s) => s === Math.fround(1 / (1 - p))),
      `${label}: a kept row is not scaled by 1/(1 − p)`,
    );
    const rate = kept.length / rows;
    const bound = 5 * Math.sqrt(p * (1 - p) / rows);
    assert.ok(
      Math.abs(rate - (1 - p)) < bound,
      `${label}: keep rate ${rate} vs ${1 - p} ± ${bound}`,
    );
    // E[scale] = 1 (the branch's expectation is unchanged); its std is √(p/(1−p)).
    const mean = scales.reduce((a, s) => a + s, 0) / rows;
    const meanBound = 5 * Math.sqrt(p / (1 - p) / rows);
    assert.ok(Math.abs(mean - 1) < meanBound, `${label}: mean scale ${mean} vs 1 ± ${meanBound}`);
  }
});

Deno.test("drop_path rates rise linearly over depth from 0 to the maximum; bad input is an error", async () => {
  const rates = dropPathRates(0.3, 4);
  [0, 0.1, 0.2, 0.3].forEach((r, l) =>
    assert.ok(Math.abs(rates[l]! - r) < 1e-15, `block ${l}: rate ${rates[l]}, expected ${r}`)
  );
  assert.deepStrictEqual(dropPathRates(0.3, 1), [0]);
  assert.throws(() => dropPathRates(0.3, 0), /depth must be an integer ≥ 1/);
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("drop_path validation", 64);
  await assert.rejects(
    () => dropPathForward(kernels, { rows: 2, cols: 2, p: 1, x: b, y: b, scales: b }),
    /drop probability p must be in \[0, 1\), got 1/,
  );
  await assert.rejects(
    () => dropPathForward(kernels, { rows: 8, cols: 4, p: 0.1, x: b, y: b, scales: b }),
    /buffer x .* needs 32 f32 values/,
  );
  b.destroy();
});
