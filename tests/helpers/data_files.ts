/** Small dataset files that tests write: IDX, CIFAR records, gzip. */

import { join } from "node:path";
import { rng } from "./random.ts";

/** An IDX file: big-endian magic and dimensions, then the bytes. */
export function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Gzipped bytes. */
export async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `n` random images of `pixels` bytes and labels below `classes`. */
export function randomImages(n: number, pixels: number, classes: number, seed: number) {
  const next = rng(seed);
  const images = Uint8Array.from({ length: n * pixels }, () => Math.floor(next() * 256));
  const labels = Uint8Array.from({ length: n }, () => Math.floor(next() * classes));
  return { images, labels };
}

/**
 * Images a small MLP can learn: class c is a bright block at a class-specific place on a noisy
 * background (3×32×32 channel-major for CIFAR, any shape).
 */
export function learnableImages(
  n: number,
  shape: [number, number, number],
  classes: number,
  seed: number,
) {
  const [c, h, w] = shape;
  const next = rng(seed);
  const images = new Uint8Array(n * c * h * w);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(next() * classes);
    labels[i] = label;
    const by = Math.floor((label * h) / classes);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const on = y >= by && y < by + Math.max(1, Math.floor(h / classes));
          images[((i * c + ch) * h + y) * w + x] = Math.min(
            255,
            (on ? 200 : 20) + Math.floor(next() * 50),
          );
        }
      }
    }
  }
  return { images, labels };
}

/** CIFAR binary records: label byte(s), then 3072 pixels. */
export function cifarRecords(
  images: Uint8Array,
  labels: Uint8Array[],
  pixels = 3072,
): Uint8Array<ArrayBuffer> {
  const n = labels[0]!.length;
  const record = labels.length + pixels;
  const out = new Uint8Array(n * record);
  for (let i = 0; i < n; i++) {
    labels.forEach((l, k) => (out[i * record + k] = l[i]!));
    out.set(images.subarray(i * pixels, (i + 1) * pixels), i * record + labels.length);
  }
  return out;
}

/** Writes files into a new temporary directory and returns it. */
export async function tempDirWith(
  files: Record<string, Uint8Array<ArrayBuffer> | string>,
  prefix = "data_",
) {
  const dir = await Deno.makeTempDir({ prefix });
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
  return dir;
}
