import assert from "node:assert";
import { join } from "node:path";
import { Gpu } from "../core/gpu/device.ts";
import { KernelCache } from "../core/gpu/kernels.ts";
import { defaultMatmulTile } from "../core/ops/matmul.ts";
import {
  overrideTuning,
  saveTuning,
  shapeKey,
  tileFor,
  tuningCache,
  tuningPath,
} from "../core/ops/tuning.ts";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { train } from "../core/train/trainer.ts";

Deno.test("tuning: the cache is per adapter under XDG_CACHE_HOME, read once, and training uses its tiles", async () => {
  const cacheHome = await Deno.makeTempDir({ prefix: "cache-" });
  const saved = Deno.env.get("XDG_CACHE_HOME");
  Deno.env.set("XDG_CACHE_HOME", cacheHome);
  try {
    const gpu = await Gpu.open();
    const path = tuningPath(gpu.report.description);
    assert.ok(path.startsWith(join(cacheHome, "webgpu-trainer", "matmul-")), path);
    assert.strictEqual(tuningCache(gpu), null, "no cache yet");
    assert.deepStrictEqual(
      tileFor(gpu, "nt", 16, 8, 12),
      defaultMatmulTile(gpu, "nt", { m: 16, n: 8, k: 12 }),
      "no cache: the adapter class's default for the shape",
    );
    // A cached tile for the first layer's forward shape (batch 16, 8 out, 12 in) …
    const bogus = { ...defaultMatmulTile(gpu, "nt"), threadM: 99 };
    await saveTuning(gpu, { [shapeKey("nt", 16, 8, 12)]: { tile: bogus, gflops: 1 } });
    assert.deepStrictEqual(tileFor(gpu, "nt", 16, 8, 12), bogus);
    assert.deepStrictEqual(
      tileFor(gpu, "nn", 16, 8, 12),
      defaultMatmulTile(gpu, "nn", { m: 16, n: 8, k: 12 }),
      "other shapes keep the default",
    );
    // … is what training asks the matmul binding for: an impossible one proves it is read.
    const fresh = await Gpu.open();
    assert.strictEqual(
      tuningCache(fresh)?.adapter,
      gpu.report.description,
      "a new device reads the saved file",
    );
    const registry = builtinRegistry();
    const config = resolveConfig(registry, [{
      source: "test",
      values: {
        dataset: "synthetic",
        synthetic_features: 12,
        model: "mlp",
        widths: "8",
        batch_size: 16,
        epochs: 1,
      },
    }]);
    await assert.rejects(
      () =>
        train({
          gpu: fresh,
          kernels: new KernelCache(fresh),
          registry,
          config,
          outDir: join(cacheHome, "run"),
        }),
      /99/,
    );
    // An override replaces the file for every scope of the device: null = the built-in tiles.
    const run = fresh.scope("run");
    overrideTuning(fresh, null);
    assert.deepStrictEqual(
      tileFor(run, "nt", 16, 8, 12),
      defaultMatmulTile(fresh, "nt", { m: 16, n: 8, k: 12 }),
    );
    const other = { ...defaultMatmulTile(fresh, "nt"), threadM: 7 };
    overrideTuning(fresh, { [shapeKey("nt", 16, 8, 12)]: { tile: other, gflops: 2 } });
    assert.deepStrictEqual(tileFor(run, "nt", 16, 8, 12), other);
    assert.deepStrictEqual(tileFor(gpu, "nt", 16, 8, 12), bogus, "another device keeps the file");
    overrideTuning(fresh, undefined);
    assert.deepStrictEqual(tileFor(fresh, "nt", 16, 8, 12), bogus, "back to the file");
    run.dispose();
    gpu.destroy();
    fresh.destroy();
  } finally {
    if (saved === undefined) Deno.env.delete("XDG_CACHE_HOME");
    else Deno.env.set("XDG_CACHE_HOME", saved);
    await Deno.remove(cacheHome, { recursive: true });
  }
});
