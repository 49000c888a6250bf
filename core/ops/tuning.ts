/**
 * Per-adapter matmul tiles: `deno task bench --tune` measures the candidate tiles at each shape a
 * model uses and caches the fastest in `$XDG_CACHE_HOME/webgpu-trainer/matmul-<adapter>.json`
 * (or `~/.cache/...`); the trainer's linear layers take the cached tile for their shape, else the
 * built-in default of the adapter's class.
 *
 * @module
 */

import { join } from "@std/path";
import type { Gpu } from "../gpu/device.ts";
import { defaultMatmulTile, type MatmulLayout, type MatmulTile } from "./matmul.ts";

/** The cache file's content. */
export interface TuningCache {
  adapter: string;
  /** "layout:MxNxK" → the fastest tile measured there, with its GFLOP/s. */
  matmul: Record<string, { tile: MatmulTile; gflops: number }>;
}

/** The cache file of the adapter. */
export function tuningPath(adapter: string): string {
  const env = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  const base = env("XDG_CACHE_HOME") ?? join(env("HOME") ?? ".", ".cache");
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "adapter";
  return join(base, "webgpu-trainer", `matmul-${slug}.json`);
}

/** The key of a shape in the cache. */
export function shapeKey(layout: MatmulLayout, m: number, n: number, k: number): string {
  return `${layout}:${m}x${n}x${k}`;
}

const loaded = new WeakMap<Gpu, TuningCache | null>();
/** Per device (every scope of it): tiles that replace the cache file, see {@link overrideTuning}. */
const overrides = new WeakMap<GPUDevice, TuningCache | null>();

/**
 * Makes every scope of `gpu`'s device use `matmul` as its tuned tiles instead of the cache file:
 * `null` means the built-in tiles only, `undefined` goes back to the file. The GPU suite measures
 * the step with the built-in tiles, tunes, then measures it again with the tuned ones, whatever a
 * cache file held before.
 */
export function overrideTuning(gpu: Gpu, matmul: TuningCache["matmul"] | null | undefined): void {
  if (matmul === undefined) overrides.delete(gpu.device);
  else {
    overrides.set(gpu.device, matmul && { adapter: gpu.report.description, matmul: { ...matmul } });
  }
}

/**
 * The adapter's cache, read once per device; null when there is none (or it is unreadable). An
 * {@link overrideTuning} of the device comes first.
 */
export function tuningCache(gpu: Gpu): TuningCache | null {
  if (overrides.has(gpu.device)) return overrides.get(gpu.device)!;
  if (!loaded.has(gpu)) {
    let cache: TuningCache | null = null;
    try {
      const parsed = JSON.parse(Deno.readTextFileSync(tuningPath(gpu.report.description)));
      if (parsed?.adapter === gpu.report.description && typeof parsed.matmul === "object") {
        cache = parsed;
      }
    } catch {
      // No cache yet, or a broken one: the defaults apply.
    }
    loaded.set(gpu, cache);
  }
  return loaded.get(gpu)!;
}

/** The tile for a matmul shape: the tuned one when cached, else the adapter class's default. */
export function tileFor(
  gpu: Gpu,
  layout: MatmulLayout,
  m: number,
  n: number,
  k: number,
): MatmulTile {
  return tuningCache(gpu)?.matmul[shapeKey(layout, m, n, k)]?.tile ??
    defaultMatmulTile(gpu, layout, { m, n, k });
}

/** Writes the adapter's cache (atomically) and makes this process use it. */
export async function saveTuning(gpu: Gpu, matmul: TuningCache["matmul"]): Promise<string> {
  const path = tuningPath(gpu.report.description);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const cache: TuningCache = { adapter: gpu.report.description, matmul };
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(cache, null, 2) + "\n");
  await Deno.rename(tmp, path);
  loaded.set(gpu, cache);
  return path;
}
