import assert from "node:assert";
import { join } from "node:path";
import {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  loadMnist,
  type MnistSplit,
} from "../datasets/mnist.ts";
import { rng } from "./helpers/random.ts";

/** An IDX file: big-endian magic and dimensions, then the bytes. */
function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A tiny synthetic split: `n` images of 28×28 random pixels and random digits. */
function synthetic(n: number, seed: number) {
  const next = rng(seed);
  const images = Uint8Array.from({ length: n * 784 }, () => Math.floor(next() * 256));
  const labels = Uint8Array.from({ length: n }, () => Math.floor(next() * 10));
  return { images, labels };
}

/** Writes the four files of a small MNIST-shaped dataset, train gzipped and test plain. */
async function writeSynthetic(dir: string) {
  const train = synthetic(12, 1);
  const test = synthetic(5, 2);
  await Deno.writeFile(
    join(dir, "train-images-idx3-ubyte.gz"),
    await gzip(idx(IDX_IMAGES_MAGIC, [12, 28, 28], train.images)),
  );
  await Deno.writeFile(
    join(dir, "train-labels-idx1-ubyte.gz"),
    await gzip(idx(IDX_LABELS_MAGIC, [12], train.labels)),
  );
  await Deno.writeFile(
    join(dir, "t10k-images-idx3-ubyte"),
    idx(IDX_IMAGES_MAGIC, [5, 28, 28], test.images),
  );
  await Deno.writeFile(
    join(dir, "t10k-labels-idx1-ubyte"),
    idx(IDX_LABELS_MAGIC, [5], test.labels),
  );
  return { train, test };
}

function pixelStats(split: MnistSplit): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const p of split.images) {
    s += p;
    s2 += p * p;
  }
  const mean = s / split.images.length;
  return { mean, std: Math.sqrt(s2 / split.images.length - mean * mean) };
}

Deno.test("mnist: the npm package's files give 60000/10000 28×28 images", async () => {
  const { train, test } = await loadMnist();
  for (const [name, split, n] of [["train", train, 60000], ["test", test, 10000]] as const) {
    assert.strictEqual(split.count, n, `${name} count`);
    assert.strictEqual(split.rows, 28);
    assert.strictEqual(split.cols, 28);
    assert.strictEqual(split.images.length, n * 784, `${name} pixels`);
    assert.strictEqual(split.labels.length, n, `${name} labels`);
  }
  const hist = new Array(10).fill(0);
  for (const l of train.labels) hist[l]++;
  for (let c = 0; c < 10; c++) {
    assert.ok(hist[c] >= 5000 && hist[c] <= 7000, `train class ${c}: ${hist[c]} images`);
  }
  // The normalisation constants everyone uses for MNIST come from the training pixels.
  const { mean, std } = pixelStats(train);
  assert.ok(Math.abs(mean / (0.1307 * 255) - 1) < 0.01, `train pixel mean ${mean}`);
  assert.ok(Math.abs(std / (0.3081 * 255) - 1) < 0.01, `train pixel std ${std}`);
  // Real digits: dark background, so most pixels are exactly 0 and some are saturated.
  const zeros = train.images.reduce((a, p) => a + (p === 0 ? 1 : 0), 0) / train.images.length;
  assert.ok(zeros > 0.7 && zeros < 0.9, `fraction of zero pixels ${zeros}`);
});

Deno.test("mnist: --data DIR reads plain and gzipped IDX files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mnist_" });
  try {
    const expected = await writeSynthetic(dir);
    const got = await loadMnist({ dir });
    assert.strictEqual(got.train.count, 12);
    assert.strictEqual(got.test.count, 5);
    assert.deepStrictEqual(got.train.images, expected.train.images);
    assert.deepStrictEqual(got.train.labels, expected.train.labels);
    assert.deepStrictEqual(got.test.images, expected.test.images);
    assert.deepStrictEqual(got.test.labels, expected.test.labels);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Replaces one file of a valid synthetic dataset and expects loading to fail naming it. */
async function corrupt(file: string, bytes: Uint8Array | null, pattern: RegExp) {
  const dir = await Deno.makeTempDir({ prefix: "mnist_bad_" });
  try {
    await writeSynthetic(dir);
    const path = join(dir, file);
    if (bytes === null) await Deno.remove(path);
    else await Deno.writeFile(path, bytes);
    await assert.rejects(loadMnist({ dir }), (e: Error) => {
      assert.strictEqual(e.name, "DataError");
      assert.ok(e.message.startsWith(path), `message names ${path}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mnist: corrupt IDX files fail with a message naming the file", async () => {
  const good = idx(IDX_IMAGES_MAGIC, [5, 28, 28], synthetic(5, 2).images);
  await corrupt(
    "t10k-images-idx3-ubyte",
    idx(IDX_LABELS_MAGIC, [5, 28, 28], synthetic(5, 2).images),
    /bad magic number 2049 \(0x00000801\), expected 2051/,
  );
  await corrupt(
    "t10k-images-idx3-ubyte",
    good.subarray(0, good.length - 100),
    /truncated: 5 images of 28×28 need 3920 bytes after the header, found 3820/,
  );
  await corrupt("t10k-images-idx3-ubyte", good.subarray(0, 10), /truncated: 10 bytes/);
  await corrupt(
    "t10k-labels-idx1-ubyte",
    idx(IDX_LABELS_MAGIC, [5], new Uint8Array([1, 2, 3, 12, 4])),
    /label 3 is 12, expected a digit/,
  );
  await corrupt(
    "t10k-labels-idx1-ubyte",
    idx(IDX_LABELS_MAGIC, [4], new Uint8Array([1, 2, 3, 4])),
    /4 labels but .*t10k-images-idx3-ubyte has 5 images/,
  );
  await corrupt(
    "train-labels-idx1-ubyte.gz",
    (await gzip(idx(IDX_LABELS_MAGIC, [12], new Uint8Array(12)))).subarray(0, 20),
    /corrupt gzip data/,
  );
  await corrupt("t10k-labels-idx1-ubyte", null, /not found \(nor t10k-labels-idx1-ubyte\.gz\)/);
});
