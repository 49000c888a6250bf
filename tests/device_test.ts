import assert from "node:assert";
import { Gpu, GpuError, OPTIONAL_FEATURES, REQUESTED_LIMITS } from "../core/gpu/device.ts";
import { expandIncludes, KernelCache, submitDispatches, wgsl } from "../core/gpu/kernels.ts";
import { scale, SCALE_KERNEL } from "../core/ops/elementwise.ts";
import { testGpu } from "./helpers/gpu.ts";

Deno.test("device: reports the adapter, its fallback flag, the maximum limits and optional features", async () => {
  const { gpu } = await testGpu();
  const r = gpu.report;
  assert.ok(r.description.length > 0);
  assert.strictEqual(typeof r.fallback, "boolean");
  assert.strictEqual(
    r.fallback,
    (gpu.adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ===
      true,
  );
  for (const name of REQUESTED_LIMITS) {
    const adapterLimit = (gpu.adapter.limits as unknown as Record<string, number>)[name]!;
    assert.strictEqual(
      r.limits[name],
      adapterLimit,
      `${name} is requested at the adapter's maximum`,
    );
  }
  assert.ok(
    r.features.every((f) => (OPTIONAL_FEATURES as readonly string[]).includes(f) && gpu.has(f)),
  );
  for (const f of OPTIONAL_FEATURES) assert.strictEqual(gpu.has(f), gpu.adapter.features.has(f), f);
});

Deno.test("device: no adapter is an error that says what to install", async () => {
  await assert.rejects(
    () => Gpu.open({ gpu: { requestAdapter: () => Promise.resolve(null) } }),
    (e: Error) =>
      e instanceof GpuError && /mesa-vulkan-drivers/.test(e.message) &&
      /Vulkan, Metal or D3D12/.test(e.message),
  );
});

Deno.test("device: an oversized buffer fails before allocation, naming it and the sizes", async () => {
  const { gpu } = await testGpu();
  const max = gpu.report.limits.maxStorageBufferBindingSize!;
  assert.throws(
    () => gpu.storage("huge activations", max + 4),
    new RegExp(
      `storage buffer "huge activations" needs ${
        max + 4
      } bytes but the adapter binds at most ${max}`,
    ),
  );
});

Deno.test("device: a shader that does not compile throws the compiler's message naming the kernel", async () => {
  const { kernels } = await testGpu();
  await assert.rejects(
    () =>
      kernels.dispatch({
        kernel: wgsl("broken_kernel", "fn main() { let x = ; }"),
        bindings: [],
        workgroups: 1,
      }),
    (e: Error) =>
      e instanceof GpuError && /kernel "broken_kernel" failed to compile/.test(e.message) &&
      /expected/.test(e.message),
  );
  await assert.rejects(
    () => kernels.pipeline(SCALE_KERNEL, "no_such_entry"),
    (e: Error) => e instanceof GpuError && /pipeline "scale\.no_such_entry"/.test(e.message),
  );
});

Deno.test("device: a bad binding is a validation error naming the dispatch and its buffers", async () => {
  const { gpu, kernels } = await testGpu();
  const notStorage = gpu.uniform("a uniform, not storage", new Float32Array(4));
  const out = gpu.storage("scale out", 16);
  await assert.rejects(
    () => scale(kernels, { x: notStorage, out, n: 4, alpha: 2, label: "bad scale" }),
    (e: Error) =>
      e instanceof GpuError && /bind group of "bad scale"/.test(e.message) &&
      /a uniform, not storage/.test(e.message),
  );
  notStorage.destroy();
  out.destroy();
});

Deno.test("device: an error while the GPU runs surfaces at the next read, naming the buffer; no hang", async () => {
  const gpu = await Gpu.open();
  const kernels = new KernelCache(gpu);
  const x = gpu.storage("doomed x", new Float32Array(8));
  const d = await scale(kernels, { x, n: 8, alpha: 2 });
  x.destroy();
  submitDispatches(gpu, [d], "uses a destroyed buffer");
  const other = gpu.storage("innocent", 16);
  await assert.rejects(
    () => gpu.read(other),
    (e: Error) => e instanceof GpuError && /doomed x/.test(e.message),
  );
  // Later submissions fail fast with the same error.
  assert.throws(() => gpu.check(), /doomed x/);
  gpu.destroy();
});

Deno.test("device: a lost device surfaces as an error at the next read, not a hang", async () => {
  const gpu = await Gpu.open();
  const b = gpu.storage("on a lost device", 16);
  gpu.device.destroy();
  await gpu.device.lost;
  await assert.rejects(
    () => gpu.read(b),
    (e: Error) => e instanceof GpuError && /device lost/.test(e.message),
  );
});

Deno.test("kernel loader: //!include expands library sources once; pipelines are cached by kernel, entry and constants", async () => {
  const { kernels } = await testGpu();
  const code = expandIncludes(
    wgsl("uses_philox", "//!include philox\n//!include philox\nfn f() {}"),
  );
  assert.strictEqual(code.match(/fn philox4x32/g)?.length, 1, "included once");
  assert.ok(!/fn philox_test/.test(code), "the library's own entry points are left out");
  assert.throws(
    () => expandIncludes(wgsl("k", "//!include nope")),
    /kernel "k": \/\/!include nope names no library source; known are "philox", "activation", "optimizer"/,
  );
  const a = await kernels.pipeline(SCALE_KERNEL, "scale");
  assert.strictEqual(await kernels.pipeline(SCALE_KERNEL, "scale"), a);
  assert.notStrictEqual(await kernels.pipeline(SCALE_KERNEL, "scale_in_place"), a);
  const k1 = wgsl(
    "const_kernel",
    "override C: u32 = 1u;\n@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() { o[0] = C; }",
  );
  const p1 = await kernels.pipeline(k1, "main", { C: 3 });
  assert.strictEqual(await kernels.pipeline(k1, "main", { C: 3 }), p1);
  assert.notStrictEqual(await kernels.pipeline(k1, "main", { C: 4 }), p1);
});

Deno.test("kernel loader: two kernels of one name and different code of the same length are two pipelines", async () => {
  const { gpu, kernels } = await testGpu();
  const source = (value: number) =>
    wgsl(
      "same_name",
      `@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn main() { o[0] = ${value}u; }`,
    );
  const [seven, nine] = [source(7), source(9)];
  assert.strictEqual(seven.code.length, nine.code.length, "same length, different code");
  const out = gpu.storage("same_name out", 16);
  submitDispatches(gpu, [
    await kernels.dispatch({ kernel: seven, bindings: [out], workgroups: 1 }),
  ]);
  const a = (await gpu.readU32(out, 1))[0];
  submitDispatches(gpu, [
    await kernels.dispatch({ kernel: nine, bindings: [out], workgroups: 1 }),
  ]);
  const b = (await gpu.readU32(out, 1))[0];
  assert.deepStrictEqual([a, b], [7, 9]);
  out.destroy();
});

Deno.test("kernel loader: withGpu shares compiled pipelines and makes buffers in the given scope", async () => {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("dispatch scope");
  const scoped = kernels.withGpu(scope);
  assert.strictEqual(scoped.gpu, scope);
  assert.strictEqual(
    await scoped.pipeline(SCALE_KERNEL, "scale"),
    await kernels.pipeline(SCALE_KERNEL, "scale"),
  );
  const before = gpu.allocatedBytes;
  scoped.gpu.uniform("a uniform of the scope", new Uint32Array(4));
  assert.ok(scope.ownedBytes >= 16);
  scope.dispose();
  assert.strictEqual(gpu.allocatedBytes, before);
});
