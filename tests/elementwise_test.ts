import { submitDispatches } from "../core/gpu/kernels.ts";
import { add, addInPlace, scale } from "../core/ops/elementwise.ts";
import { addRef, scaleRef } from "./reference/elementwise.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { poisoned, testGpu } from "./helpers/gpu.ts";
import { uniformF32 } from "./helpers/random.ts";

// 70 000 needs more than one row of 256-wide workgroups' worth of indices past a tile boundary;
// 16 777 217 > 65535·256 exercises the x/y split of the grid.
const SIZES = [1, 7, 33, 130, 257, 70_000];

Deno.test("scale: out = alpha·x and in place, against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const n of SIZES) {
    const x = uniformF32(n, n, -3, 3);
    const alpha = -0.3711;
    const xb = gpu.storage("scale x", x);
    const out = poisoned(gpu, "scale out", n);
    submitDispatches(gpu, [await scale(kernels, { x: xb, out, n, alpha })]);
    const expected = scaleRef(x, alpha);
    assertClose(await gpu.readF32(out, n), expected, {
      atol: 1e-7,
      rtol: 1e-6,
      label: `scale n=${n}`,
    });
    submitDispatches(gpu, [await scale(kernels, { x: xb, n, alpha })]);
    assertClose(await gpu.readF32(xb, n), expected, {
      atol: 1e-7,
      rtol: 1e-6,
      label: `scale_in_place n=${n}`,
    });
    xb.destroy();
    out.destroy();
  }
});

Deno.test("add: out = a + b and acc += x, against float64", async () => {
  const { gpu, kernels } = await testGpu();
  for (const n of SIZES) {
    const a = uniformF32(n, 2 * n + 1, -2, 2);
    const b = uniformF32(n, 3 * n + 5, -2, 2);
    const ab = gpu.storage("add a", a);
    const bb = gpu.storage("add b", b);
    const out = poisoned(gpu, "add out", n);
    submitDispatches(gpu, [await add(kernels, { a: ab, b: bb, out, n })]);
    const expected = addRef(a, b);
    assertClose(await gpu.readF32(out, n), expected, {
      atol: 1e-7,
      rtol: 1e-6,
      label: `add n=${n}`,
    });
    submitDispatches(gpu, [await addInPlace(kernels, { x: ab, acc: bb, n })]);
    assertClose(await gpu.readF32(bb, n), expected, {
      atol: 1e-7,
      rtol: 1e-6,
      label: `add_in_place n=${n}`,
    });
    ab.destroy();
    bb.destroy();
    out.destroy();
  }
});
