import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import type { Config } from "../core/train/registry.ts";
import { stratifiedSplit } from "../core/train/split.ts";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from "../datasets/idx.ts";
import { cifarRecords, gzip, idx, randomImages, tempDirWith } from "./helpers/data_files.ts";

function config(values: Config): Config {
  return resolveConfig(builtinRegistry(), [{ source: "test", values }]);
}

function load(values: Config, fitted?: unknown) {
  const c = config(values);
  return builtinRegistry().get("dataset", String(c.dataset)).load(c, fitted);
}

/** Expects loading to fail with a DataError whose message starts with `path` and matches. */
async function failsWith(values: Config, path: string, pattern: RegExp) {
  await assert.rejects(load(values), (e: Error) => {
    assert.strictEqual(e.name, "DataError", e.message);
    assert.ok(e.message.startsWith(path), `message names ${path}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return true;
  });
}

Deno.test("stratified split: each class gives its share, seeded, for a file sorted by class", () => {
  // 100 rows sorted by class: 60 of class 0, 30 of class 1, 10 of class 2.
  const labels = Uint8Array.from({ length: 100 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));
  const a = stratifiedSplit(labels, 100, 0.2, 7);
  const b = stratifiedSplit(labels, 100, 0.2, 7);
  assert.deepStrictEqual(a, b, "a pure function of its arguments");
  assert.strictEqual(a.heldOut.length, 20);
  assert.strictEqual(a.keep.length, 80);
  const perClass = [0, 1, 2].map((c) =>
    Array.from(a.heldOut).filter((r) => labels[r] === c).length
  );
  assert.deepStrictEqual(perClass, [12, 6, 2]);
  assert.deepStrictEqual(
    [...a.keep, ...a.heldOut].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
    "every row once",
  );
  assert.notDeepStrictEqual(stratifiedSplit(labels, 100, 0.2, 8).heldOut, a.heldOut, "seeded");
  // Largest remainders: 7 rows of 3 classes of 10, 10, 10 hold out 3 + 2 + 2 = 7 in all.
  const even = Uint8Array.from({ length: 30 }, (_, i) => i % 3);
  assert.strictEqual(stratifiedSplit(even, 30, 7 / 30, 1).heldOut.length, 7);
});

Deno.test("idx: --data DIR with gzipped and plain files, any image shape from the header", async () => {
  const train = randomImages(9, 3 * 4 * 5, 7, 1);
  const test = randomImages(4, 3 * 4 * 5, 7, 2);
  const dir = await tempDirWith({
    "train-images-idx4-ubyte.gz": await gzip(idx(0x804, [9, 3, 4, 5], train.images)),
    "train-labels-idx1-ubyte.gz": await gzip(idx(IDX_LABELS_MAGIC, [9], train.labels)),
    "t10k-images-idx4-ubyte": idx(0x804, [4, 3, 4, 5], test.images),
    "t10k-labels-idx1-ubyte": idx(IDX_LABELS_MAGIC, [4], test.labels),
  });
  try {
    const data = await load({ dataset: "idx", data: dir });
    assert.deepStrictEqual(data.info.image, { channels: 3, height: 4, width: 5 });
    assert.strictEqual(data.info.features, 60);
    const max = Math.max(...train.labels, ...test.labels);
    assert.strictEqual(data.info.classes, max + 1);
    assert.deepStrictEqual(data.train.samples, train.images);
    assert.deepStrictEqual(data.test.labels, test.labels);
    assert.strictEqual(data.mean.length, 3, "per-channel statistics of the training pixels");
    const red = train.images.filter((_, i) => i % 60 < 20);
    const mean = red.reduce((a, v) => a + v, 0) / red.length / 255;
    assert.ok(Math.abs(data.mean[0]! - mean) < 1e-12, `channel 0 mean ${data.mean[0]} vs ${mean}`);
    // The four flags name files anywhere, in place of the usual names.
    const flagged = await load({
      dataset: "idx",
      train_images: join(dir, "t10k-images-idx4-ubyte"),
      train_labels: join(dir, "t10k-labels-idx1-ubyte"),
      test_images: join(dir, "train-images-idx4-ubyte.gz"),
      test_labels: join(dir, "train-labels-idx1-ubyte.gz"),
    });
    assert.strictEqual(flagged.train.count, 4);
    assert.strictEqual(flagged.test.count, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("idx: bad files fail with one line naming the file and what is wrong", async () => {
  const good = randomImages(5, 6 * 6, 3, 3);
  const files = () => ({
    "train-images-idx3-ubyte": idx(IDX_IMAGES_MAGIC, [5, 6, 6], good.images),
    "train-labels-idx1-ubyte": idx(IDX_LABELS_MAGIC, [5], good.labels),
    "t10k-images-idx3-ubyte": idx(IDX_IMAGES_MAGIC, [5, 6, 6], good.images),
    "t10k-labels-idx1-ubyte": idx(IDX_LABELS_MAGIC, [5], good.labels),
  });
  const cases: [string, Uint8Array<ArrayBuffer> | null, RegExp][] = [
    [
      "t10k-images-idx3-ubyte",
      idx(IDX_IMAGES_MAGIC, [5, 6, 6], good.images).subarray(0, 16 + 170),
      /truncated: 5 images of 6×6 need 180 bytes after the header, found 170/,
    ],
    [
      "train-labels-idx1-ubyte",
      idx(IDX_LABELS_MAGIC, [4], good.labels.subarray(0, 4)),
      /4 labels but .*train-images-idx3-ubyte has 5 images/,
    ],
    ["t10k-labels-idx1-ubyte", idx(0x803, [5, 1, 1], good.labels), /bad magic number 2051/],
    ["train-images-idx3-ubyte", new Uint8Array(), /empty file$/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const dir = await tempDirWith({ ...files(), [name]: bytes! });
    try {
      await failsWith({ dataset: "idx", data: dir }, join(dir, name), pattern);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const dir = await tempDirWith({
    ...files(),
    "test-images-idx3-ubyte": files()["t10k-images-idx3-ubyte"],
  });
  try {
    await failsWith(
      { dataset: "idx", data: dir },
      dir,
      /2 files \(t10k-images-idx3-ubyte, test-images-idx3-ubyte\).*--test-images/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cifar10 and cifar100: binary records, 3×32×32 channel-major, fine or coarse labels", async () => {
  const a = randomImages(3, 3072, 10, 4);
  const b = randomImages(2, 3072, 10, 5);
  const t = randomImages(2, 3072, 10, 6);
  const dir = await tempDirWith({
    "data_batch_1.bin": cifarRecords(a.images, [a.labels]),
    "data_batch_2.bin.gz": await gzip(cifarRecords(b.images, [b.labels])),
    "test_batch.bin": cifarRecords(t.images, [t.labels]),
  });
  const coarse = Uint8Array.from([3, 19, 0]);
  const fine = Uint8Array.from([99, 0, 42]);
  const dir100 = await tempDirWith({
    "train.bin": cifarRecords(a.images, [coarse, fine]),
    "test.bin": cifarRecords(t.images, [coarse.subarray(0, 2), fine.subarray(0, 2)]),
  });
  try {
    const ten = await load({ dataset: "cifar10", data: dir });
    assert.strictEqual(ten.train.count, 5);
    assert.deepStrictEqual(ten.train.samples.subarray(3 * 3072), b.images, "batch 2 after batch 1");
    assert.deepStrictEqual(Array.from(ten.train.labels), [...a.labels, ...b.labels]);
    assert.deepStrictEqual(ten.info.image, { channels: 3, height: 32, width: 32 });
    assert.strictEqual(ten.mean.length, 3);
    const hundred = await load({ dataset: "cifar100", data: dir100 });
    assert.strictEqual(hundred.info.classes, 100);
    assert.deepStrictEqual(Array.from(hundred.train.labels), [99, 0, 42]);
    const twenty = await load({ dataset: "cifar100", data: dir100, cifar_labels: "coarse" });
    assert.strictEqual(twenty.info.classes, 20);
    assert.deepStrictEqual(Array.from(twenty.train.labels), [3, 19, 0]);
    await Deno.writeFile(
      join(dir, "test_batch.bin"),
      cifarRecords(t.images, [t.labels]).subarray(0, 6000),
    );
    await failsWith(
      { dataset: "cifar10", data: dir },
      join(dir, "test_batch.bin"),
      /6000 bytes is not a whole number of 3073-byte records \(1 records and 2927 bytes over\)/,
    );
    await Deno.writeFile(
      join(dir, "test_batch.bin"),
      cifarRecords(t.images, [Uint8Array.from([1, 10])]),
    );
    await failsWith(
      { dataset: "cifar10", data: dir },
      join(dir, "test_batch.bin"),
      /record 1 \(byte 3073\) has label 10, expected 0..9/,
    );
    await Deno.writeFile(join(dir, "test_batch.bin"), new Uint8Array());
    await failsWith({ dataset: "cifar10", data: dir }, join(dir, "test_batch.bin"), /empty file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(dir100, { recursive: true });
  }
});

Deno.test("text: byte and char tokens at their absolute positions; the test split and a test file", async () => {
  const text = "abcabcabcé!";
  const dir = await tempDirWith({
    "t.txt": text,
    "u.txt": "cab✓",
    "bad.txt": new Uint8Array([0x61, 0x62, 0xff, 0x63]),
    "bad2.txt": new Uint8Array([0x61, 0xc3, 0xa9, 0x62, 0xc3, 0x28]),
    "empty.txt": "",
  });
  try {
    const bytes = await load({ dataset: "text", data: join(dir, "t.txt"), text_context: 2 });
    const utf8 = new TextEncoder().encode(text);
    assert.strictEqual(bytes.info.classes, 256);
    assert.strictEqual(bytes.info.features, 3);
    const n = utf8.length;
    const testCount = Math.round(n * 0.1);
    assert.strictEqual(bytes.train.count, n - testCount);
    assert.strictEqual(bytes.test.count, testCount);
    // Sample p: [p, token p−2, token p−1] → token p; −1 before the start.
    assert.deepStrictEqual(Array.from(bytes.train.samples.subarray(0, 9)), [
      0,
      -1,
      -1,
      1,
      -1,
      97,
      2,
      97,
      98,
    ]);
    assert.deepStrictEqual(Array.from(bytes.train.labels.subarray(0, 3)), [97, 98, 99]);
    const first = n - testCount;
    assert.strictEqual(bytes.test.samples[0], first, "the test split keeps its own positions");
    assert.strictEqual(bytes.test.labels[0], utf8[first]);

    const chars = await load({
      dataset: "text",
      data: join(dir, "t.txt"),
      test_data: join(dir, "u.txt"),
      tokenize: "char",
    });
    // Vocabulary of the training text by code point: ! a b c é, then the unknown class.
    const vocabulary = ["!", "a", "b", "c", "é"];
    assert.deepStrictEqual((chars.fitted as { vocabulary: string[] }).vocabulary, vocabulary);
    assert.strictEqual(chars.info.classes, 6);
    assert.strictEqual(chars.train.count, Array.from(text).length);
    assert.deepStrictEqual(
      Array.from(chars.test.samples),
      [0, 1, 2, 3],
      "a test file's positions start at 0",
    );
    assert.deepStrictEqual(Array.from(chars.test.labels), [3, 1, 2, 5], "✓ is unknown");
    // A saved vocabulary is applied as it is.
    const again = await load(
      {
        dataset: "text",
        data: join(dir, "t.txt"),
        test_data: join(dir, "u.txt"),
        tokenize: "char",
      },
      { format: "webgpu-trainer/text-vocabulary/1", vocabulary: ["a", "b", "c"] },
    );
    assert.deepStrictEqual(Array.from(again.test.labels), [2, 0, 1, 3]);

    await failsWith(
      { dataset: "text", data: join(dir, "bad.txt"), tokenize: "char" },
      join(dir, "bad.txt"),
      /byte 2 is not valid UTF-8/,
    );
    await failsWith(
      { dataset: "text", data: join(dir, "bad2.txt"), tokenize: "char" },
      join(dir, "bad2.txt"),
      /byte 4 is not valid UTF-8/,
    );
    await failsWith(
      { dataset: "text", data: join(dir, "empty.txt") },
      join(dir, "empty.txt"),
      /empty file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("text: positions past 2^32 as two words, from text_first_position; one word stops at 2^24", async () => {
  const dir = await tempDirWith({ "t.txt": "abcd" });
  try {
    const first = 2 ** 32 + 5;
    const two = await load({
      dataset: "text",
      data: join(dir, "t.txt"),
      test_data: join(dir, "t.txt"),
      text_context: 1,
      text_position_words: 2,
      text_first_position: first,
    });
    assert.strictEqual(two.info.features, 3);
    assert.strictEqual(two.info.positionWords, 2);
    const rows = Array.from(
      { length: 4 },
      (_, i) => Array.from(two.train.samples.slice(3 * i, 3 * i + 3)),
    );
    assert.deepStrictEqual(
      rows,
      [0, 1, 2, 3].map((i) => [
        (first + i) % 2 ** 24,
        Math.floor((first + i) / 2 ** 24),
        i === 0 ? -1 : "abcd".charCodeAt(i - 1),
      ]),
    );
    await failsWith(
      { dataset: "text", data: join(dir, "t.txt"), text_first_position: 2 ** 24 - 2 },
      join(dir, "t.txt"),
      /--text-position-words 2/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
