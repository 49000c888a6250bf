import assert from "node:assert";
import { submitDispatches } from "../core/gpu/kernels.ts";
import { softmaxCrossEntropy } from "../core/ops/softmax_cross_entropy.ts";
import { softmaxCrossEntropyRef } from "./reference/softmax_cross_entropy.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { numericGradient } from "./helpers/finite_difference.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { runTorch } from "./helpers/torch.ts";
import { f64, integers, normalF32, rng, uniformF32 } from "./helpers/random.ts";

/** One problem: logits, labels and the options of both the kernel and the reference. */
interface Case {
  rows: number;
  classes: number;
  logits: Float32Array;
  labels: Uint32Array;
  eps?: number;
  validRows?: number;
  gradScale?: number;
  mixup?: { labels2: Uint32Array; lambda: number };
  /** Evaluation mode: no gradient buffer. */
  noGrad?: boolean;
}

function randomCase(rows: number, classes: number, seed: number, extra: Partial<Case> = {}): Case {
  return {
    rows,
    classes,
    logits: normalF32(rows * classes, seed, 2),
    labels: integers(rows, classes, seed + 1),
    ...extra,
  };
}

function reference(c: Case) {
  return softmaxCrossEntropyRef(c.logits, c.labels, c.rows, c.classes, {
    labelSmoothing: c.eps,
    validRows: c.validRows,
    gradScale: c.gradScale,
    mixup: c.mixup && { labels2: c.mixup.labels2, lambda: Math.fround(c.mixup.lambda) },
  });
}

/** Runs the kernel on a case and reads back loss, correct and (unless noGrad) the gradient. */
async function runKernel(c: Case) {
  const { gpu, kernels } = await testGpu();
  const n = c.rows * c.classes;
  const logits = gpu.storage("sce logits", c.logits);
  const labels = gpu.storage("sce labels", c.labels);
  const loss = poisoned(gpu, "sce loss", c.rows);
  const correct = poisoned(gpu, "sce correct", c.rows);
  const grad = c.noGrad ? undefined : poisoned(gpu, "sce grad", n);
  const labels2 = c.mixup && gpu.storage("sce labels2", c.mixup.labels2);
  const lambda = c.mixup && gpu.storage("sce lambda", new Float32Array([c.mixup.lambda]));
  const d = await softmaxCrossEntropy(kernels, {
    logits,
    labels,
    loss,
    correct,
    grad,
    rows: c.rows,
    classes: c.classes,
    validRows: c.validRows,
    labelSmoothing: c.eps,
    gradScale: c.gradScale,
    mixup: labels2 && lambda ? { labels2, lambda } : undefined,
  });
  submitDispatches(gpu, [d]);
  const out = {
    loss: await gpu.readF32(loss, c.rows),
    correct: await gpu.readF32(correct, c.rows),
    grad: grad && await gpu.readF32(grad, n),
  };
  for (const b of [logits, labels, loss, correct, grad, labels2, lambda]) b?.destroy();
  return out;
}

// Loss: the default atol 1e-5 with rtol 1e-5 (tighter than the default 1e-4): losses reach ~160 for
// logits of ±80, where storing the result in f32 alone costs ~1e-5. Gradient: compared after
// dividing out grad_scale, so p − q ∈ [−1, 1] and the default atol 1e-6 / rtol 1e-4 apply.
const LOSS_TOL = { atol: 1e-5, rtol: 1e-5 };
const GRAD_TOL = { atol: 1e-6, rtol: 1e-4 };

/** Runs a case on the GPU and compares loss, correct (exactly) and gradient with the reference. */
async function check(c: Case, name: string): Promise<void> {
  const got = await runKernel(c);
  const want = reference(c);
  const tag = `softmax_cross_entropy main ${name} B=${c.rows} K=${c.classes}`;
  assertClose(got.loss, want.loss, { ...LOSS_TOL, label: `${tag} loss` });
  assertClose(got.correct, want.correct, { atol: 0, rtol: 0, label: `${tag} correct` });
  if (!got.grad) return;
  if (c.gradScale === 0) {
    // Evaluation: the gradient buffer keeps its poison.
    assert.ok(got.grad.every(Number.isNaN), `${tag} grad: written although gradScale is 0`);
    return;
  }
  const valid = c.validRows ?? c.rows;
  const scale = c.gradScale ?? (valid > 0 ? 1 / valid : 0);
  if (scale === 0) {
    assertClose(got.grad, want.grad, { atol: 0, rtol: 0, label: `${tag} grad (all masked)` });
    return;
  }
  const unscale = (g: ArrayLike<number>) => Float64Array.from(g, (v) => v / scale);
  assertClose(unscale(got.grad), unscale(want.grad), { ...GRAD_TOL, label: `${tag} grad` });
}

Deno.test("softmax_cross_entropy reference: gradient matches central finite differences", () => {
  const cases: Case[] = [];
  for (const classes of [1, 2, 10, 33]) {
    for (const eps of [0, 0.3]) cases.push(randomCase(3, classes, classes * 7 + 1, { eps }));
  }
  cases.push(randomCase(4, 10, 91, { eps: 0.3, validRows: 2 }));
  cases.push(randomCase(3, 9, 92, {
    eps: 0.1,
    gradScale: 0.37,
    mixup: { labels2: integers(3, 9, 93), lambda: 0.63 },
  }));
  cases.push({ ...randomCase(2, 7, 94, { eps: 0.3 }), logits: uniformF32(14, 95, -80, 80) });
  for (const c of cases) {
    const want = reference(c);
    const lossOf = (z: Float64Array) => {
      const r = softmaxCrossEntropyRef(z, c.labels, c.rows, c.classes, {
        labelSmoothing: c.eps,
        validRows: c.validRows,
        mixup: c.mixup,
      });
      const scale = c.gradScale ?? 1 / (c.validRows ?? c.rows);
      return scale * r.loss.reduce((a, b) => a + b, 0);
    };
    // Float64 central differences with h = 1e-5: truncation ~h²·|f'''| ≈ 1e-10, rounding
    // ~1e-16·|f|/h ≤ 2e-9 for the ±80 case.
    assertClose(want.grad, numericGradient(lossOf, f64(c.logits), 1e-5), {
      atol: 1e-7,
      rtol: 1e-6,
      label: `softmax_cross_entropy reference FD B=${c.rows} K=${c.classes} ε=${c.eps ?? 0}${
        c.mixup ? " mixup" : ""
      }${c.validRows !== undefined ? ` valid=${c.validRows}` : ""}`,
    });
  }
});

Deno.test("softmax_cross_entropy reference agrees with PyTorch cross_entropy", async () => {
  // One python process checks loss (reduction none) and gradient (mean) for ε = 0 and 0.3.
  const cases = [
    randomCase(7, 10, 201, { eps: 0 }),
    randomCase(33, 257, 202, { eps: 0.3 }),
    { ...randomCase(5, 33, 203, { eps: 0.3 }), logits: uniformF32(5 * 33, 204, -80, 80) },
  ];
  const script = `
import json, sys, torch
out = []
for c in json.load(sys.stdin):
    z = torch.tensor(c["logits"], dtype=torch.float64).reshape(c["rows"], c["classes"])
    z.requires_grad_(True)
    y = torch.tensor(c["labels"], dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(z, y, reduction="none", label_smoothing=c["eps"])
    loss.mean().backward()
    out.append({"loss": loss.tolist(), "grad": z.grad.reshape(-1).tolist()})
print(json.dumps(out))
`;
  const input = cases.map((c) => ({
    rows: c.rows,
    classes: c.classes,
    eps: c.eps,
    logits: Array.from(c.logits),
    labels: Array.from(c.labels),
  }));
  const torch = await runTorch(script, input, "softmax_cross_entropy torch check") as {
    loss: number[];
    grad: number[];
  }[];
  cases.forEach((c, i) => {
    const want = reference(c);
    const tag = `softmax_cross_entropy reference vs torch B=${c.rows} K=${c.classes} ε=${c.eps}`;
    // Both sides are float64 with different summation orders.
    assertClose(want.loss, torch[i]!.loss, { atol: 1e-12, rtol: 1e-12, label: `${tag} loss` });
    assertClose(want.grad, torch[i]!.grad, { atol: 1e-14, rtol: 1e-10, label: `${tag} grad` });
  });
});

for (const eps of [0, 0.3]) {
  Deno.test(`softmax_cross_entropy kernel ε = ${eps}: loss, correct, grad vs reference`, async () => {
    for (const classes of [1, 2, 10, 33, 100, 257]) {
      for (const rows of [1, 7, 33, 130]) {
        await check(randomCase(rows, classes, rows * 1000 + classes, { eps }), `ε=${eps}`);
      }
    }
  });
}

Deno.test("softmax_cross_entropy kernel at K = 11230 (the IN21k head)", async () => {
  await check(randomCase(3, 11230, 301, { eps: 0 }), "ε=0");
  await check(randomCase(7, 11230, 302, { eps: 0.3 }), "ε=0.3");
});

Deno.test("softmax_cross_entropy kernel is stable for logits of ±80", async () => {
  for (const [rows, classes] of [[7, 10], [33, 257], [2, 11230]] as const) {
    const c = randomCase(rows, classes, rows + classes, { eps: 0.3 });
    c.logits = uniformF32(rows * classes, rows * classes, -80, 80);
    // One row with a single dominant logit: p saturates to one-hot.
    c.logits[c.labels[0]!] = 80;
    await check(c, "±80 ε=0.3");
    await check({ ...c, eps: 0 }, "±80 ε=0");
  }
});

Deno.test("softmax_cross_entropy kernel with mixup targets", async () => {
  for (const [rows, classes, lambda] of [[1, 2, 0.5], [7, 10, 0.8125], [33, 257, 0.2]] as const) {
    const c = randomCase(rows, classes, 400 + rows, {
      eps: 0.3,
      mixup: { labels2: integers(rows, classes, 500 + rows), lambda },
    });
    // Some rows mix a label with itself.
    c.mixup!.labels2[0] = c.labels[0]!;
    await check(c, `mixup λ=${lambda} ε=0.3`);
    await check({ ...c, eps: 0 }, `mixup λ=${lambda} ε=0`);
  }
});

Deno.test("softmax_cross_entropy kernel masks rows ≥ validRows and skips the gradient in evaluation", async () => {
  for (const [rows, classes, validRows] of [[7, 10, 3], [130, 33, 129], [33, 257, 0]] as const) {
    const c = randomCase(rows, classes, 600 + rows, { eps: 0.3, validRows });
    await check(c, `valid=${validRows}`);
    await check({ ...c, noGrad: true }, `valid=${validRows} no grad`);
    await check({ ...c, gradScale: 0 }, `valid=${validRows} gradScale=0`);
    await check({
      ...c,
      mixup: { labels2: integers(rows, classes, 700), lambda: 0.3 },
    }, `valid=${validRows} mixup`);
  }
});

Deno.test("softmax_cross_entropy kernel: argmax ties go to the lowest index", async () => {
  for (const [rows, classes] of [[7, 10], [33, 600], [5, 11230]] as const) {
    const c = randomCase(rows, classes, 800 + classes, { eps: 0.3 });
    const next = rng(900 + classes);
    for (let r = 0; r < rows; r++) {
      // Three tied maxima, some in the same thread (k and k + 256) and some in different ones.
      const base = r * classes;
      const first = Math.floor(next() * classes);
      const tied = [first, (first + 256) % classes, Math.floor(next() * classes)];
      for (const k of tied) c.logits[base + k] = 20; // above every N(0, 2²) draw
      // The label is the lowest tied index, another tied index, or a random one.
      const pick = r % 3;
      c.labels[r] = pick === 0 ? Math.min(...tied) : pick === 1 ? Math.max(...tied) : c.labels[r]!;
    }
    // A row of equal logits: the argmax is 0, a hit for label 0 and a miss for label 1.
    c.logits.fill(0.5, 0, classes);
    c.labels[0] = classes === 600 ? 1 : 0;
    await check(c, "ties");
  }
});

Deno.test("softmax_cross_entropy kernel: a label ≥ K gives NaN loss and gradient", async () => {
  const c = randomCase(7, 10, 1000, { eps: 0.3 });
  c.labels[3] = 10;
  const got = await runKernel(c);
  for (let r = 0; r < 7; r++) {
    assert.strictEqual(Number.isNaN(got.loss[r]), r === 3, `loss row ${r}: ${got.loss[r]}`);
    assert.strictEqual(got.correct[r] === 1 || got.correct[r] === 0, true, `correct row ${r}`);
    for (let k = 0; k < 10; k++) {
      assert.strictEqual(Number.isNaN(got.grad![r * 10 + k]), r === 3, `grad row ${r} k ${k}`);
    }
  }
});

Deno.test("softmaxCrossEntropy rejects bad sizes with RangeError", async () => {
  const { gpu, kernels } = await testGpu();
  const b = gpu.storage("sce small", 64);
  const base = { logits: b, labels: b, loss: b, correct: b, grad: b, rows: 2, classes: 4 };
  const cases: [Record<string, number>, RegExp][] = [
    [{ classes: 0 }, /classes must be a positive integer, got 0/],
    [{ rows: 1.5 }, /rows must be a positive integer, got 1.5/],
    [{ validRows: 3 }, /validRows must be an integer in \[0, 2\], got 3/],
    [{ labelSmoothing: -0.1 }, /labelSmoothing must be in \[0, 1\], got -0.1/],
    [
      { classes: 9 },
      /buffer logits \("sce small"\) holds 64 bytes, needs 18 f32 values \(72 bytes\)/,
    ],
  ];
  for (const [override, message] of cases) {
    await assert.rejects(
      async () => await softmaxCrossEntropy(kernels, { ...base, ...override }),
      (e: Error) => e instanceof RangeError && message.test(e.message),
    );
  }
  b.destroy();
});

Deno.test("softmax_cross_entropy kernel over 65 537 rows (workgroups split over x and y)", async () => {
  await check(randomCase(65_537, 3, 1100, { eps: 0.3 }), "ε=0.3 grid split");
});
