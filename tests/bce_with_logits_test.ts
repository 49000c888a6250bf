import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { bceWithLogits } from "../core/ops/bce_with_logits.ts";
import { bceWithLogitsRef } from "./reference/bce_with_logits.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { runTorch } from "./helpers/torch.ts";
import { f64, normalF32, rng, uniformF32 } from "./helpers/random.ts";

const SIZES = [1, 7, 257, 4099];

/** Logits, targets and the options of both the kernel and the reference. */
interface Case {
  x: Float32Array;
  y: Float32Array;
  posWeight?: number;
  validCount?: number;
  gradScale?: number;
  noGrad?: boolean;
}

/** Targets: a mix of hard 0/1 labels and soft values in (0, 1). */
function targets(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, (_, i) => i % 3 === 2 ? next() : next() < 0.5 ? 0 : 1);
}

function randomCase(n: number, seed: number, extra: Partial<Case> = {}): Case {
  return { x: normalF32(n, seed, 3), y: targets(n, seed + 1), ...extra };
}

function reference(c: Case) {
  return bceWithLogitsRef(c.x, c.y, {
    posWeight: c.posWeight === undefined ? undefined : Math.fround(c.posWeight),
    validCount: c.validCount,
    gradScale: c.gradScale,
  });
}

// Loss: the kernel's form (1 − y)·softplus(x) + w·y·softplus(−x) adds non-negative f32 terms, so its
// error is a few ulp of the loss (≤ ~100 for |x| ≤ 80): default atol 1e-5, rtol 1e-5 (tighter than
// the default 1e-4). Gradient: compared after dividing out grad_scale, values in [−w, 1]: the
// default atol 1e-6 / rtol 1e-4.
const LOSS_TOL = { atol: 1e-5, rtol: 1e-5 };
const GRAD_TOL = { atol: 1e-6, rtol: 1e-4 };

/** Runs the kernel on a case and compares loss and gradient with the reference. */
async function check(c: Case, name: string): Promise<void> {
  const { gpu, kernels } = await testGpu();
  const n = c.x.length;
  const x = gpu.storage("bce logits", c.x);
  const y = gpu.storage("bce targets", c.y);
  const loss = poisoned(gpu, "bce loss", n);
  const grad = c.noGrad ? undefined : poisoned(gpu, "bce grad", n);
  const d = await bceWithLogits(kernels, {
    logits: x,
    targets: y,
    loss,
    grad,
    n,
    validCount: c.validCount,
    posWeight: c.posWeight,
    gradScale: c.gradScale,
  });
  submitDispatches(gpu, [d]);
  const gotLoss = await gpu.readF32(loss, n);
  const gotGrad = grad && await gpu.readF32(grad, n);
  for (const b of [x, y, loss, grad]) b?.destroy();
  const want = reference(c);
  const tag = `bce_with_logits main ${name} n=${n}`;
  assertClose(gotLoss, want.loss, { ...LOSS_TOL, label: `${tag} loss` });
  if (!gotGrad) return;
  if (c.gradScale === 0) {
    // Evaluation: the gradient buffer keeps its poison.
    assert.ok(gotGrad.every(Number.isNaN), `${tag} grad: written although gradScale is 0`);
    return;
  }
  const valid = c.validCount ?? n;
  const scale = c.gradScale ?? (valid > 0 ? 1 / valid : 0);
  if (scale === 0) {
    assertClose(gotGrad, want.grad, { atol: 0, rtol: 0, label: `${tag} grad (all masked)` });
    return;
  }
  const unscale = (g: ArrayLike<number>) => Float64Array.from(g, (v) => v / scale);
  assertClose(unscale(gotGrad), unscale(want.grad), { ...GRAD_TOL, label: `${tag} grad` });
}

Deno.test("bce_with_logits reference: gradient matches central finite differences", () => {
  for (const posWeight of [undefined, 2.5, 0.3]) {
    const c = randomCase(33, 11, { posWeight, gradScale: 0.7 });
    c.x[0] = 25; // large |x| on both sides, where the gradient saturates
    c.x[1] = -25;
    const lossOf = (x: Float64Array) =>
      0.7 * bceWithLogitsRef(x, c.y, { posWeight }).loss.reduce((a, b) => a + b, 0);
    // Float64 central differences with h = 1e-5: truncation ~h²·|σ''|/6 ≈ 2e-12, rounding
    // ~1e-16·|loss sum|/h ≈ 1e-9.
    assertClose(reference(c).grad, numericGradient(lossOf, f64(c.x), 1e-5), {
      atol: 1e-8,
      rtol: 1e-6,
      label: `bce_with_logits reference FD n=33 pos_weight=${posWeight ?? 1}`,
    });
  }
});

Deno.test("bce_with_logits reference agrees with PyTorch binary_cross_entropy_with_logits", async () => {
  // One python process: loss (reduction none) and gradient (mean) with and without pos_weight.
  const cases = [
    randomCase(257, 21),
    randomCase(257, 22, { posWeight: 2.5 }),
    { ...randomCase(99, 23, { posWeight: 0.4 }), x: uniformF32(99, 24, -80, 80) },
  ];
  const script = `
import json, sys, torch
out = []
for c in json.load(sys.stdin):
    x = torch.tensor(c["x"], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(c["y"], dtype=torch.float64)
    pw = torch.tensor(c["posWeight"], dtype=torch.float64)
    f = torch.nn.functional.binary_cross_entropy_with_logits
    loss = f(x, y, reduction="none", pos_weight=pw)
    f(x, y, reduction="mean", pos_weight=pw).backward()
    out.append({"loss": loss.tolist(), "grad": x.grad.tolist()})
print(json.dumps(out))
`;
  const input = cases.map((c) => ({
    x: Array.from(c.x),
    y: Array.from(c.y),
    posWeight: Math.fround(c.posWeight ?? 1),
  }));
  const torch = await runTorch(script, input, "bce_with_logits torch check") as {
    loss: number[];
    grad: number[];
  }[];
  cases.forEach((c, i) => {
    const want = reference(c);
    const tag = `bce_with_logits reference vs torch n=${c.x.length} pos_weight=${c.posWeight ?? 1}`;
    // Both sides are float64; they differ only in rounding.
    assertClose(want.loss, torch[i]!.loss, { atol: 1e-12, rtol: 1e-12, label: `${tag} loss` });
    assertClose(want.grad, torch[i]!.grad, { atol: 1e-15, rtol: 1e-10, label: `${tag} grad` });
  });
});

Deno.test("bce_with_logits kernel without pos_weight: loss and grad vs reference", async () => {
  for (const n of SIZES) await check(randomCase(n, n), "pos_weight=1");
});

Deno.test("bce_with_logits kernel with pos_weight: loss and grad vs reference", async () => {
  for (const posWeight of [2.5, 0.3]) {
    for (const n of SIZES) {
      await check(randomCase(n, 3 * n, { posWeight }), `pos_weight=${posWeight}`);
    }
  }
});

Deno.test("bce_with_logits kernel is stable for large |x|", async () => {
  for (const posWeight of [1, 4]) {
    const c = randomCase(4099, 77, { posWeight });
    c.x = uniformF32(4099, 78, -80, 80);
    // Extremes: saturated sigmoid with right and wrong targets, and exp(−|x|) below f32's epsilon.
    c.x.set([88, -88, 30, -30, 17, -17]);
    c.y.set([1, 1, 0, 0, 1, 0]);
    await check(c, `|x|≤88 pos_weight=${posWeight}`);
  }
});

Deno.test("bce_with_logits kernel masks elements ≥ validCount and skips the gradient in evaluation", async () => {
  for (const [n, validCount] of [[7, 3], [4099, 4000], [257, 0]] as const) {
    const c = randomCase(n, 900 + n, { validCount, posWeight: 2 });
    await check(c, `valid=${validCount}`);
    await check({ ...c, noGrad: true }, `valid=${validCount} no grad`);
    await check({ ...c, gradScale: 0 }, `valid=${validCount} gradScale=0`);
  }
});

Deno.test("bceWithLogits rejects bad arguments with RangeError", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("bce small", 64);
  const base = { logits: b, targets: b, loss: b, grad: b, n: 16 };
  const cases: [Record<string, number>, RegExp][] = [
    [{ n: 0 }, /n must be a positive integer, got 0/],
    [{ validCount: 17 }, /validCount must be an integer in \[0, 16\], got 17/],
    [{ posWeight: -1 }, /posWeight must be finite and ≥ 0, got -1/],
    [{ n: 17, validCount: 1 }, /buffer logits \("bce small"\) has 64 bytes, needs 68/],
  ];
  for (const [override, message] of cases) {
    await assert.rejects(
      async () => await bceWithLogits(kernels, { ...base, ...override }),
      (e: Error) => e instanceof RangeError && message.test(e.message),
    );
  }
  b.destroy();
});
