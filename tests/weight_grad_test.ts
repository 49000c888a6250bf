/**
 * The split weight gradient of a linear layer (core/graph/weight_grad.ts): on a software adapter a
 * tall, thin dW is summed over chunks of rows by one batched matmul and an axis sum. A weight
 * used by two layers over 256 rows (the second contribution accumulates) gets the gradient of
 * float64 finite differences, as does the input; tolerances as tests/model_grad_test.ts (sums over
 * 256 rows in f32, ~1e-6 relative).
 */

import assert from "node:assert";
import { Graph } from "../core/graph/graph.ts";
import * as nn from "../core/graph/nn.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { weightGradChunks } from "../core/graph/weight_grad.ts";
import { tileFor } from "../core/ops/tuning.ts";
import { seededRandom } from "../core/util/random.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";
import { gpuGradients } from "./helpers/model_grads.ts";
import { numericGradients } from "./reference/graph_interpreter.ts";

Deno.test("weight gradient split over chunks of rows: a shared weight's two contributions and the input against float64 finite differences", async () => {
  const { gpu } = await testGpu();
  const g = new Graph(8);
  const x = g.input("x", [32, 6]); // 256 rows of 6
  const w = g.param("shared.weight", [6, 6], { kind: "uniform", bound: 0.4 });
  const h = nn.linearWith(g, x, w, undefined, { activation: "gelu", name: "first" });
  const y = nn.linearWith(g, h, w, undefined, { name: "second" });
  const logits = nn.linear(g, nn.mean(g, y, 1), "head", { out: 3 });
  const { loss, correct } = nn.labelLoss(g, "cross-entropy", logits);
  g.addLoss(loss, 1, { main: true, correct });
  const chunks = weightGradChunks(
    gpu.report.fallback,
    tileFor(gpu, "tn", 6, 6, 256),
    256,
    6,
    6,
  );
  if (gpu.report.fallback) assert.ok(chunks > 1, `256 rows into ${chunks} chunks`);
  const random = seededRandom(3);
  const layout = new ParamLayout(g.params);
  const init = layout.initialValues(random);
  const params = new Map<string, Float64Array>();
  for (const s of layout.segments) {
    params.set(s.param.name, Float64Array.from(init.subarray(s.offset, s.offset + s.size)));
  }
  const inputs = {
    params,
    input: Float64Array.from(Float32Array.from({ length: 8 * 32 * 6 }, () => 2 * random() - 1)),
    labels: Array.from({ length: 8 }, (_, r) => r % 3),
  };
  const got = await gpuGradients(g, inputs);
  const fd = numericGradients(g, inputs);
  const tol = { atol: 3e-5, rtol: 2e-3 };
  for (const p of g.params) {
    assertClose(got.params.get(p.name)!, fd.params.get(p.name)!, { ...tol, label: `d${p.name}` });
  }
  assertClose(got.input, fd.input, { ...tol, label: "dx" });
  assert.ok(Math.max(...fd.params.get("shared.weight")!.map(Math.abs)) > 1e-3);
});

Deno.test("weight gradient split: none on a GPU tile or for few rows; a divisor of the rows otherwise", () => {
  const direct = { strategy: "direct" as const, m: 16, n: 128, k: 1, threadM: 16, threadN: 16 };
  assert.strictEqual(weightGradChunks(false, direct, 8192, 32, 16), 1);
  assert.strictEqual(weightGradChunks(true, { ...direct, strategy: "shared" }, 8192, 32, 16), 1);
  assert.strictEqual(weightGradChunks(true, direct, 100, 32, 16), 1);
  // 2 register tiles: 32 chunks fill 64 invocations.
  assert.strictEqual(weightGradChunks(true, direct, 8192, 32, 16), 32);
  // 6 · 64 rows: at most 6 chunks of ≥ 64 rows, and 6 divides 384.
  assert.strictEqual(weightGradChunks(true, direct, 384, 32, 16), 6);
  // 7 · 64 + 1 = 449 is prime: no chunks divide it.
  assert.strictEqual(weightGradChunks(true, direct, 449, 32, 16), 1);
});
