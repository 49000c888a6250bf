import assert from "node:assert";
import { grid, packUniform, submitDispatches, wgsl } from "../core/gpu/kernels.ts";
import philoxSource from "../wgsl/philox.wgsl" with { type: "text" };
import { philox4x32 } from "./reference/philox.ts";
import { poisonedU32, testGpu } from "./helpers/gpu.ts";

const PHILOX = wgsl("philox", philoxSource);

Deno.test("philox reference reproduces Random123's known-answer vectors", () => {
  assert.deepStrictEqual(philox4x32([0, 0, 0, 0], [0, 0]), [
    0x6627e8d5,
    0xe169c58d,
    0xbc57ac4c,
    0x9b00dbd8,
  ]);
  assert.deepStrictEqual(
    philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]),
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  );
  assert.deepStrictEqual(
    philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  );
});

Deno.test("philox kernel: every bit equals the reference, and the same key gives the same bits", async () => {
  const { gpu, kernels } = await testGpu();
  for (const [n, key] of [[1, [0, 0]], [33, [7, 11]], [257, [0xdeadbeef, 0x12345678]]] as const) {
    const c = [0x243f6a88, 0x85a308d3, 0xffffffff];
    const runOnce = async () => {
      const out = poisonedU32(gpu, "philox out", 4 * n);
      const params = gpu.uniform(
        "philox params",
        packUniform([["u32", n], ["u32", c[0]!], ["u32", c[1]!], ["u32", c[2]!], ["u32", key[0]], [
          "u32",
          key[1],
        ]]),
      );
      const d = await kernels.dispatch({
        kernel: PHILOX,
        entry: "philox_test",
        bindings: [out, params],
        workgroups: grid(n, 64),
      });
      submitDispatches(gpu, [d]);
      const bits = await gpu.readU32(out, 4 * n);
      out.destroy();
      params.destroy();
      return bits;
    };
    const first = await runOnce();
    for (let i = 0; i < n; i++) {
      const expected = philox4x32([i, c[0]!, c[1]!, c[2]!], [key[0], key[1]]);
      assert.deepStrictEqual(
        Array.from(first.subarray(4 * i, 4 * i + 4)),
        expected,
        `philox n=${n} element ${i}`,
      );
    }
    assert.deepStrictEqual(await runOnce(), first, `philox n=${n}: second run differs`);
  }
});
