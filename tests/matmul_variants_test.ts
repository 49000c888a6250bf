/**
 * The matmul strategies (`shared` = entry point `main`, `direct` = entry point `direct`) against
 * the float64 reference: every layout and epilogue option in each, the direct strategy's vec4 and
 * scalar loads and its split grid, and the default tile per adapter class. tests/matmul_test.ts
 * covers the default tile (on llvmpipe: direct) at every shape and option, and several tiles of
 * both strategies.
 */

import assert from "node:assert";
import { grid } from "../core/gpu/kernels.ts";
import { type Activation, ACTIVATIONS } from "../core/ops/activation_ids.ts";
import {
  DEFAULT_MATMUL_TILE,
  defaultMatmulTile,
  matmul,
  MATMUL_FALLBACK_SMALL_FMAS,
  MATMUL_FALLBACK_SMALL_TILE,
  MATMUL_FALLBACK_TILE,
  MATMUL_TILE_CANDIDATES,
  type MatmulLayout,
  type MatmulTile,
  resolveMatmulTile,
} from "../core/ops/matmul.ts";
import type { Gpu } from "../core/gpu/device.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { type MatmulCase, runMatmulCase, tolerance } from "./helpers/matmul_case.ts";
import { testGpu } from "./helpers/gpu.ts";

const LAYOUTS: MatmulLayout[] = ["nn", "nt", "tn"];
const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as Activation[];

/**
 * Both strategies sum k = 0..K−1 in order with fma from 0, so their results are identical on
 * llvmpipe; a tenth of the reference tolerance leaves room for a compiler that reassociates and
 * stays far below any indexing error (≥ |a·b| ~ 0.1).
 */
function tight(k: number): { atol: number; rtol: number } {
  return { atol: 1e-6 * Math.sqrt(k), rtol: 1e-5 };
}

const tileName = (t: Partial<MatmulTile>) =>
  t.strategy === "direct" ? `direct ${t.threadM}×${t.threadN}` : `shared ${JSON.stringify(t)}`;

const name = (c: MatmulCase) =>
  `matmul ${
    c.tile?.strategy === "direct" ? "direct" : "main"
  } ${c.layout.toUpperCase()} M=${c.m} N=${c.n} K=${c.k} ${tileName(c.tile ?? {})}${
    c.bias ? " bias" : ""
  }${c.activation ? ` ${c.activation}` : ""}${c.pre ? " pre" : ""}${
    c.alpha !== undefined ? ` alpha=${c.alpha}` : ""
  }${c.accumulateTimes ? ` +=×${c.accumulateTimes}` : ""}`;

/** Runs a case and checks C (and pre) against float64; returns C. */
async function check(c: MatmulCase): Promise<Float32Array> {
  const { got, expected } = await runMatmulCase(c);
  const tol = tolerance(c.k);
  if (got.pre) assertClose(got.pre, expected.pre, { ...tol, label: `${name(c)}: pre` });
  // An activation's slope is at most 1.76 (SELU) and its f32 evaluation adds ~1e-7: twice the
  // product's tolerance on C when there is one (as in tests/matmul_test.ts).
  const scale = c.activation && c.activation !== "identity" ? 2 : 1;
  assertClose(got.c, expected.c, {
    atol: scale * tol.atol,
    rtol: scale * tol.rtol,
    label: name(c),
  });
  return got.c;
}

/** Every epilogue option of a tile in one layout: fused, bias without pre, plain and ×2. */
async function everyEpilogue(tile: Partial<MatmulTile>, layout: MatmulLayout, i: number) {
  // Three activations per layout cover all eight over the three layouts.
  const act = (j: number) => ACTIVATION_NAMES[(3 * i + j) % ACTIVATION_NAMES.length]!;
  const cases: MatmulCase[] = [
    {
      layout,
      m: 130,
      n: 257,
      k: 33,
      seed: 10 + i,
      tile,
      bias: true,
      pre: true,
      activation: act(0),
      alpha: -0.37,
      accumulateTimes: 2,
    },
    { layout, m: 33, n: 7, k: 257, seed: 20 + i, tile, bias: true, activation: act(1) },
    { layout, m: 7, n: 33, k: 130, seed: 30 + i, tile, pre: true, activation: act(2) },
    { layout, m: 257, n: 130, k: 7, seed: 40 + i, tile, alpha: 1 / 64, accumulateTimes: 1 },
    { layout, m: 1, n: 1, k: 1, seed: 50 + i, tile },
  ];
  for (const c of cases) await check(c);
}

for (const [i, layout] of LAYOUTS.entries()) {
  Deno.test(`matmul shared ${layout}: every epilogue option against float64`, async () => {
    await everyEpilogue(DEFAULT_MATMUL_TILE, layout, i);
  });
  Deno.test(`matmul direct ${layout}: every epilogue option against float64`, async () => {
    await everyEpilogue(MATMUL_FALLBACK_SMALL_TILE, layout, i + 1);
  });
}

for (const [i, layout] of LAYOUTS.entries()) {
  Deno.test(
    `matmul direct ${layout}: the fallback tile (32×32, all 8 × 8 quads) and shared agree`,
    async () => {
      // Two pipelines per layout (~3 s each to compile): plain at [33, 7, 257], scalar loads in
      // every layout; the fused epilogue at [36, 132, 33], vec4 loads of op(B) in nn and of both
      // operands in tn (nt has none). 32 × 32 tiles overhang M and N in both.
      const cases: MatmulCase[] = [
        { layout, m: 33, n: 7, k: 257, seed: 60 + i, tile: MATMUL_FALLBACK_TILE },
        {
          layout,
          m: 36,
          n: 132,
          k: 33,
          seed: 70 + i,
          tile: MATMUL_FALLBACK_TILE,
          bias: true,
          pre: true,
          activation: ACTIVATION_NAMES[5 + i]!,
          accumulateTimes: 2,
        },
      ];
      for (const c of cases) {
        const direct = await check(c);
        const shared = await check({ ...c, tile: DEFAULT_MATMUL_TILE });
        assertClose(direct, shared, { ...tight(c.k), label: `${name(c)} vs shared` });
      }
    },
  );
}

Deno.test("matmul direct loads: vec4 and scalar quads of op(A) and op(B) in every combination", async () => {
  // VEC4_A needs tn with M % 4 = 0; VEC4_B nn or tn with N % 4 = 0. Each shape below takes a
  // different combination (nt always scalar), with K not a multiple of 4 either.
  const shapes: [number, number, number][] = [
    [36, 132, 33], // tn: A and B vec4; nn: B vec4
    [130, 260, 7], // tn, nn: B vec4
    [132, 257, 9], // tn: A vec4
    [33, 7, 257], // all scalar
    [4, 4, 1], // a single quad each way
  ];
  for (const layout of LAYOUTS) {
    for (const [m, n, k] of shapes) {
      const c: MatmulCase = { layout, m, n, k, seed: 80 + m, tile: MATMUL_FALLBACK_SMALL_TILE };
      const direct = await check(c);
      const shared = await check({ ...c, tile: DEFAULT_MATMUL_TILE });
      assertClose(direct, shared, { ...tight(k), label: `${name(c)} vs shared` });
    }
  }
});

Deno.test("matmul direct grid: more than 65535 workgroups split over x and y", async () => {
  // One 4 × 4 register tile per workgroup: M = 4·65536 + 3 rows need 65537 workgroups, so the
  // grid is 32769 × 2 and the last workgroup lies past the last tile (it must store nothing).
  const tile = { strategy: "direct" as const, m: 4, n: 4, threadM: 4, threadN: 4 };
  const c: MatmulCase = { layout: "nt", m: 4 * 65536 + 3, n: 3, k: 5, seed: 95, tile };
  const { got, expected, dispatch } = await runMatmulCase(c);
  assert.deepStrictEqual(dispatch.workgroups, grid(65537, 1));
  assert.deepStrictEqual(dispatch.workgroups, [32769, 2, 1]);
  assertClose(got.c, expected.c, { ...tolerance(c.k), label: name(c) });
});

Deno.test("matmul default tile: direct on a software adapter (small products 16×16), shared on GPUs", async () => {
  const { gpu, kernels } = await testGpu();
  const gpuClass = (fallback: boolean) =>
    ({ report: { ...gpu.report, fallback } }) as unknown as Gpu;
  const big = { m: 128, n: 512, k: 128 };
  const small = { m: 16, n: 8, k: 12 };
  assert.ok(big.m * big.n * big.k >= MATMUL_FALLBACK_SMALL_FMAS);
  for (const layout of LAYOUTS) {
    assert.deepStrictEqual(defaultMatmulTile(gpuClass(true), layout), MATMUL_FALLBACK_TILE);
    assert.deepStrictEqual(defaultMatmulTile(gpuClass(true), layout, big), MATMUL_FALLBACK_TILE);
    assert.deepStrictEqual(
      defaultMatmulTile(gpuClass(true), layout, small),
      MATMUL_FALLBACK_SMALL_TILE,
    );
    assert.deepStrictEqual(defaultMatmulTile(gpuClass(false), layout, big), DEFAULT_MATMUL_TILE);
    assert.deepStrictEqual(defaultMatmulTile(gpuClass(false), layout), DEFAULT_MATMUL_TILE);
  }
  // matmul() without a tile takes this device's default for the shape: its entry point and grid.
  const c = { layout: "tn" as const, m: 37, n: 20, k: 11 };
  const bufs = [gpu.storage("a", c.m * c.k * 4), gpu.storage("b", c.k * c.n * 4)];
  const out = gpu.storage("c", c.m * c.n * 4);
  try {
    const d = await matmul(kernels, { a: bufs[0]!, b: bufs[1]!, c: out, ...c });
    const t = defaultMatmulTile(gpu, "tn", c);
    const entry = t.strategy === "direct" ? "direct" : "main";
    assert.strictEqual(d.pipeline.label, `matmul.${entry}`);
    const expected = t.strategy === "direct"
      ? grid(
        Math.ceil(c.m / t.threadM) * Math.ceil(c.n / t.threadN),
        (t.m / t.threadM) * (t.n / t.threadN),
      )
      : [Math.ceil(c.n / t.n), Math.ceil(c.m / t.m), 1];
    assert.deepStrictEqual(d.workgroups, expected);
  } finally {
    for (const b of [...bufs, out]) b.destroy();
  }
});

Deno.test("matmul tile candidates: both strategies, all valid on this device, no duplicates", async () => {
  const { gpu } = await testGpu();
  const strategies = new Set(MATMUL_TILE_CANDIDATES.map((t) => t.strategy));
  assert.deepStrictEqual([...strategies].sort(), ["direct", "shared"]);
  const keys = MATMUL_TILE_CANDIDATES.map((t) => JSON.stringify(resolveMatmulTile(gpu, t)));
  assert.strictEqual(new Set(keys).size, keys.length, "duplicate candidates");
  for (const t of [DEFAULT_MATMUL_TILE, MATMUL_FALLBACK_TILE, MATMUL_FALLBACK_SMALL_TILE]) {
    assert.ok(keys.includes(JSON.stringify(resolveMatmulTile(gpu, t))), JSON.stringify(t));
  }
});
