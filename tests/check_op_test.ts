/**
 * checkOp — the gradient check for any op — on built-in ops of every shape family, on plugin
 * elementwise ops with a learnable parameter (scalar and per channel), and under f16; and that it
 * fails a wrong forward, a wrong input gradient and a wrong parameter gradient, naming each.
 * `defineElementwiseOp(..., { f16: true })` runs its kernel on f16 values.
 *
 * Tolerances: checkOp's default, |GPU − float64| ≤ 1e-4·(1 + |reference|): these ops sum at most
 * 8 f32 terms per value (error ~1e-6) and the finite differences are float64 (error < 1e-9).
 * Under f16 the values keep 11 significant bits (relative error 4.9e-4 per rounding, a few
 * roundings per value): 2e-2.
 */

import assert from "node:assert";
import { checkOp, type OpCheckOptions } from "../core/train/check_op.ts";
import * as nn from "../core/graph/nn.ts";
import { Graph, type Tensor } from "../core/graph/graph.ts";
import { checkElementwiseOp, defineElementwiseOp } from "../core/graph/elementwise_op.ts";
import { testGpu } from "./helpers/gpu.ts";

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** y = x·σ(βx) with a learnable β of `size` values (element i uses β[i % size]). */
function swishBeta(
  size: number,
  options: { wrongDbeta?: boolean; wrongDx?: boolean; f16?: boolean } = {},
) {
  // Element i's contribution to ∂L/∂β is dy·x²·σ'(βx); the broken one drops a factor x.
  const dbeta = options.wrongDbeta ? "g * v * s * (1.0 - s)" : "g * v * v * s * (1.0 - s)";
  // ∂y/∂x = σ + βx·σ'; the broken one forgets β.
  const dx = options.wrongDx ? "g * (s + v * s * (1.0 - s))" : "g * (s + b * v * s * (1.0 - s))";
  const tag = `${options.wrongDbeta ? "_bad_db" : ""}${options.wrongDx ? "_bad_dx" : ""}`;
  return defineElementwiseOp(
    `swish_beta_${size}${tag}${options.f16 ? "_h" : ""}`,
    `
alias X_T = f32;
alias Y_T = f32;
alias P_T = f32;
struct P { n: u32, accumulate: u32 }
const K: u32 = ${size}u;
fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }
@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> y: array<Y_T>;
@group(0) @binding(2) var<uniform> p: P;
@group(0) @binding(3) var<storage, read> theta: array<P_T>;
@compute @workgroup_size(256) fn forward(@builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) w: vec3<u32>) {
  let i = gid.x + gid.y * w.x * 256u;
  if (i >= p.n) { return; }
  let v = f32(x[i]);
  y[i] = Y_T(v * sigmoid(f32(theta[i % K]) * v));
}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> q: P;
@group(0) @binding(4) var<storage, read> theta_b: array<P_T>;
@group(0) @binding(5) var<storage, read_write> dtheta: array<f32>;
@compute @workgroup_size(256) fn backward(@builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) w: vec3<u32>) {
  let i = gid.x + gid.y * w.x * 256u;
  if (i >= q.n) { return; }
  let v = f32(x[i]);
  let b = f32(theta_b[i % K]);
  let s = sigmoid(b * v);
  let g = dy[i];
  let d = ${dx};
  dx[i] = select(d, dx[i] + d, q.accumulate == 1u);
  dtheta[i] = ${dbeta};
}`,
    { param: { name: "beta", size, init: { kind: "ones" } }, f16: options.f16 },
  );
}

function swishReference(size: number) {
  return (v: Record<string, Float64Array>) =>
    v.x!.map((x, i) => x * sig(v["act.beta"]![i % size]! * x));
}

Deno.test("checkOp: built-in ops (linear, layerNorm, batched matmul, transpose, mean, concat, slice, broadcast add) match float64 and finite differences", async () => {
  const { kernels } = await testGpu();
  const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
  const cases: (OpCheckOptions & { label: string })[] = [
    {
      label: "linear+gelu",
      inputs: { x: [3, 5] },
      build: (g: Graph, t: Record<string, Tensor>) =>
        nn.linear(g, t.x!, "fc", { out: 4, activation: "gelu" }),
      reference: (v: Record<string, Float64Array>) => {
        const out: number[] = [];
        for (let r = 0; r < 3; r++) {
          for (let o = 0; o < 4; o++) {
            let s = v["fc.bias"]![o]!;
            for (let k = 0; k < 5; k++) s += v.x![r * 5 + k]! * v["fc.weight"]![o * 5 + k]!;
            out.push(gelu(s));
          }
        }
        return out;
      },
    },
    {
      label: "layerNorm",
      inputs: { x: [4, 6] },
      build: (g: Graph, t: Record<string, Tensor>) => nn.layerNorm(g, t.x!, "ln"),
      reference: (v: Record<string, Float64Array>) => {
        const out: number[] = [];
        for (let r = 0; r < 4; r++) {
          const row = v.x!.subarray(r * 6, r * 6 + 6);
          const mu = row.reduce((a, b) => a + b, 0) / 6;
          const vr = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 6;
          row.forEach((x, j) =>
            out.push((x - mu) / Math.sqrt(vr + 1e-5) * v["ln.weight"]![j]! + v["ln.bias"]![j]!)
          );
        }
        return out;
      },
    },
    {
      label: "batched matmul",
      inputs: { a: [2, 3, 4], b: [2, 4, 5] },
      build: (g: Graph, t: Record<string, Tensor>) => nn.matmul(g, t.a!, t.b!),
      reference: (v: Record<string, Float64Array>) => {
        const out: number[] = [];
        for (let p = 0; p < 2; p++) {
          for (let i = 0; i < 3; i++) {
            for (let j = 0; j < 5; j++) {
              let s = 0;
              for (let k = 0; k < 4; k++) {
                s += v.a![p * 12 + i * 4 + k]! * v.b![p * 20 + k * 5 + j]!;
              }
              out.push(s);
            }
          }
        }
        return out;
      },
    },
    {
      label: "transpose, mean, concat, slice, broadcast add",
      inputs: { x: [2, 3, 4], bias: [4] },
      build: (g: Graph, t: Record<string, Tensor>) => {
        const tr = nn.transpose(g, t.x!, 1, 2); // [2, 4, 3]
        const m = nn.mean(g, tr, 2); // [2, 4]
        const both = nn.concat(g, [m, nn.slice(g, m, 1, 2)]); // [2, 6]
        return nn.add(g, nn.slice(g, both, 0, 4), t.bias!); // [2, 4] + [4]
      },
      reference: (v: Record<string, Float64Array>) => {
        const out: number[] = [];
        for (let b = 0; b < 2; b++) {
          const m = [0, 1, 2, 3].map((j) =>
            [0, 1, 2].reduce((s, i) => s + v.x![b * 12 + i * 4 + j]!, 0) / 3
          );
          for (let j = 0; j < 4; j++) out.push(m[j]! + v.bias![j]!);
        }
        return out;
      },
    },
  ];
  for (const c of cases) {
    const r = await checkOp(kernels, c);
    assert.ok(r.forwardError < 1e-5, `${c.label}: ${JSON.stringify(r)}`);
    const names = Object.keys(r.gradientErrors);
    assert.ok(names.length >= Object.keys(c.inputs).length, `${c.label}: ${names}`);
  }
});

Deno.test("checkOp: an elementwise op with a learnable β (scalar and per channel) passes, and a wrong dβ fails naming β", async () => {
  const { kernels } = await testGpu();
  for (const size of [1, 6]) {
    const op = swishBeta(size);
    const r = await checkOp(kernels, {
      label: op.name,
      inputs: { x: [4, 6] },
      build: (g, { x }) => op.apply(g, x!, "act"),
      reference: swishReference(size),
    });
    assert.deepStrictEqual(Object.keys(r.gradientErrors).sort(), ["act.beta", "x"]);
    assert.ok(r.gradientErrors["act.beta"]! < 1e-5, JSON.stringify(r));
  }
  const broken = swishBeta(1, { wrongDbeta: true });
  await assert.rejects(
    () =>
      checkOp(kernels, {
        inputs: { x: [4, 6] },
        build: (g, { x }) => broken.apply(g, x!, "act"),
        reference: swishReference(1),
      }),
    /checkOp op: gradient of "act\.beta" error .* exceeds 0\.0001 at act\.beta\[0\]/,
  );
  // A wrong forward and a wrong input gradient fail too, naming what is wrong.
  const op = swishBeta(1);
  await assert.rejects(
    () =>
      checkOp(kernels, {
        label: "swish",
        inputs: { x: [4, 6] },
        build: (g, { x }) => op.apply(g, x!, "act"),
        reference: (v) => v.x!.map((x) => x * sig(x)),
        values: { "act.beta": [1.5] },
      }),
    /checkOp swish: forward error .* at output\[\d+\]/,
  );
  const badDx = swishBeta(1, { wrongDx: true });
  await assert.rejects(
    () =>
      checkOp(kernels, {
        inputs: { x: [4, 6] },
        build: (g, { x }) => badDx.apply(g, x!, "act"),
        reference: swishReference(1),
        values: { "act.beta": [1.5] },
      }),
    /gradient of "x" error .* at x\[\d+\]/,
  );
  assert.throws(
    () => {
      const g = new Graph(2);
      op.apply(g, g.input("x", 3));
    },
    /has a parameter: apply\(g, x, "<layer name>"\)/,
  );
});

Deno.test("defineElementwiseOp f16: the kernel runs on f16 values, checked against float64; and runs through the plan under precision f16, parameter included", async () => {
  const { gpu, kernels } = await testGpu();
  assert.ok(gpu.has("shader-f16"), "this adapter offers shader-f16 (llvmpipe and server GPUs do)");
  const mish = defineElementwiseOp(
    "mish_h",
    `
alias X_T = f32;
alias Y_T = f32;
struct P { n: u32, accumulate: u32 }
@group(0) @binding(0) var<storage, read> x: array<X_T>;
@group(0) @binding(1) var<storage, read_write> y: array<Y_T>;
@group(0) @binding(2) var<uniform> p: P;
fn sp(v: f32) -> f32 { return select(log(1.0 + exp(v)), v, v > 20.0); }
@compute @workgroup_size(256) fn forward(@builtin(global_invocation_id) g: vec3<u32>,
    @builtin(num_workgroups) w: vec3<u32>) {
  let i = g.x + g.y * w.x * 256u;
  if (i < p.n) { let v = f32(x[i]); y[i] = Y_T(v * tanh(sp(v))); }
}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> q: P;
@compute @workgroup_size(256) fn backward(@builtin(global_invocation_id) g: vec3<u32>,
    @builtin(num_workgroups) w: vec3<u32>) {
  let i = g.x + g.y * w.x * 256u;
  if (i < q.n) {
    let v = f32(x[i]);
    let t = tanh(sp(v));
    let s = 1.0 / (1.0 + exp(-v));
    let d = dy[i] * (t + v * s * (1.0 - t * t));
    dx[i] = select(d, dx[i] + d, q.accumulate == 1u);
  }
}`,
    { f16: true },
  );
  const ref = (x: number) => x * Math.tanh(Math.log1p(Math.exp(x)));
  const f32 = await checkElementwiseOp(kernels, mish, ref);
  const f16 = await checkElementwiseOp(kernels, mish, ref, { precision: "f16" });
  assert.ok(f32.forwardError < 1e-5, JSON.stringify(f32));
  // f16 output: one rounding of |y| ≤ 4 is ≤ 2^-11·4 ≈ 2e-3 absolute, under 1 + |y| relative.
  assert.ok(f16.forwardError < 1e-3 && f16.forwardError > 1e-6, JSON.stringify(f16));
  // Through the plan under precision f16, with a learnable parameter too.
  const op = swishBeta(1, { f16: true });
  const r = await checkOp(kernels, {
    inputs: { x: [4, 6] },
    build: (g, { x }) => op.apply(g, x!, "act"),
    reference: swishReference(1),
    precision: "f16",
  });
  assert.ok(r.forwardError < 2e-2 && r.gradientErrors["act.beta"]! < 2e-2, JSON.stringify(r));
  // Without the aliases f16 cannot be declared; an f32-only op refuses an f16 check.
  assert.throws(
    () => defineElementwiseOp("no_alias", "fn forward() {}", { f16: true }),
    /op "no_alias": f16: true needs the kernel to declare `alias X_T = f32;`, `alias Y_T = f32;`/,
  );
  await assert.rejects(
    () => checkElementwiseOp(kernels, swishBeta(1), ref),
    /has a parameter: check it with checkOp/,
  );
});

/** erf to 1e-15 (Abramowitz–Stegun is not enough for a float64 reference): by series/continued fraction. */
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 200; n++) {
      term *= -t * t / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc by continued fraction for |x| ≥ 3.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}
