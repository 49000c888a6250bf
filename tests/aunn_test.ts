/**
 * aunn and `deno task generate`: the model memorises a short text placed past 2^32 in the corpus
 * (two position words) through the CLI with its recipe's optimizer (≥ 99% token accuracy on it,
 * the loss falling ≥ 100×); generation at temperature 0 (and top-k 1) from a memorised position
 * reproduces the text that follows, and a periodic text learned with the bits encoding continues
 * past its end; a prompt is printed and learned before the sampled tokens;
 * conditioning steps at lr 1e-2 on an unseen (position, token) pair raise its log-probability
 * by > 10 nats in one step and make it the most likely there in two, while another position
 * keeps its memorised token; and the sampler's top-k and temperature against float64 softmax frequencies.
 */

import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { textRow } from "../datasets/text.ts";
import { readRunRecord } from "../core/cli/run_folder.ts";
import { loadRunDataset } from "../core/cli/run_dataset.ts";
import { RowModel, sampleToken } from "../core/train/generate.ts";
import { tempDirWith } from "./helpers/data_files.ts";
import { testGpu } from "./helpers/gpu.ts";
import { rng } from "./helpers/random.ts";
import { runCli } from "./helpers/cli.ts";

const TEXT =
  "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs!";
/** Past 2^32: the positions need both words. */
const FIRST = 2 ** 32 + 7;

const cli = runCli;

let trained: Promise<{ dir: string; summary: { test_accuracy: number } }> | undefined;

/** One run for the file's tests: the text memorised at positions FIRST ... */
function trainedRun() {
  trained ??= (async () => {
    const cwd = await tempDirWith({ "text.txt": TEXT }, "aunn-");
    const { code, stdout, stderr } = await cli("train", [
      "--model",
      "aunn",
      "--dataset",
      "text",
      "--data",
      "text.txt",
      "--test-data",
      "text.txt",
      "--text-position-words",
      "2",
      "--text-first-position",
      String(FIRST),
      "--width",
      "64",
      "--depth",
      "2",
      "--position-features",
      "64",
      "--batch-size",
      "16",
      "--epochs",
      "25",
      "--lr",
      "1e-2",
      "--warmup-steps",
      "5",
      "--out",
      "run",
      "--json",
    ], cwd);
    assert.strictEqual(code, 0, stderr);
    return { dir: join(cwd, "run"), summary: JSON.parse(stdout.trim().split("\n").at(-1)!) };
  })();
  return trained;
}

Deno.test("aunn memorises a text at positions past 2^32: ≥ 99% token accuracy, loss down ≥ 100×", async () => {
  const { dir, summary } = await trainedRun();
  assert.ok(summary.test_accuracy >= 0.99, `token accuracy ${summary.test_accuracy}`);
  const windows = (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => r.type === "train");
  const first = windows[0].loss;
  const last = windows.at(-1).loss;
  assert.ok(first / last >= 100, `loss ${first} → ${last}: fell ${first / last}×`);
});

Deno.test("deno task generate: temperature 0 and top-k 1 reproduce the memorised continuation", async () => {
  const { dir } = await trainedRun();
  for (const sampling of [["--temperature", "0"], ["--top-k", "1", "--seed", "4"]]) {
    const { code, stdout, stderr } = await cli("generate", [
      "--run",
      dir,
      "--start",
      "20",
      "--length",
      "40",
      ...sampling,
    ], dir);
    assert.strictEqual(code, 0, stderr);
    assert.strictEqual(stdout, TEXT.slice(20, 60) + "\n", `${sampling}: ${stderr}`);
    assert.match(stderr, /generated 40 tokens at positions 20\.\.59/);
  }
});

Deno.test("deno task generate: a prompt is printed, then --length sampled tokens", async () => {
  const { dir } = await trainedRun();
  const { code, stdout, stderr } = await cli("generate", [
    "--run",
    dir,
    "--prompt",
    "Hi",
    "--length",
    "6",
    "--top-k",
    "5",
    "--adapt",
    "--adapt-lr",
    "1e-4",
  ], dir);
  assert.strictEqual(code, 0, stderr);
  const bytes = new TextEncoder().encode(stdout);
  assert.strictEqual(bytes.length, 2 + 6 + 1, JSON.stringify(stdout));
  assert.ok(stdout.startsWith("Hi"));
  // After the training text's 85 tokens and the 2-token prompt.
  assert.match(stderr, /positions 87\.\.92 after a 2-token prompt, adapting/);
});

Deno.test("aunn with bits continues a periodic text past its end (unseen high bits)", async () => {
  const cwd = await tempDirWith({ "abc.txt": "abcdefgh".repeat(16) }, "aunn-periodic-");
  try {
    const trainRun = await cli("train", [
      "--model",
      "aunn",
      "--dataset",
      "text",
      "--data",
      "abc.txt",
      "--test-data",
      "abc.txt",
      "--position-encoding",
      "bits",
      "--position-features",
      "16",
      "--width",
      "64",
      "--depth",
      "2",
      "--batch-size",
      "16",
      "--epochs",
      "15",
      "--lr",
      "1e-2",
      "--warmup-steps",
      "5",
      "--weight-decay",
      "0.01",
      "--out",
      "run",
      "--json",
    ], cwd);
    assert.strictEqual(trainRun.code, 0, trainRun.stderr);
    // Positions 128 .. 191 set bit 7, which no training position has.
    const { code, stdout, stderr } = await cli("generate", [
      "--run",
      "run",
      "--length",
      "64",
      "--temperature",
      "0",
    ], cwd);
    assert.strictEqual(code, 0, stderr);
    assert.strictEqual(stdout, "abcdefgh".repeat(8) + "\n");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("conditioning steps teach a new token at one position and keep the others", async () => {
  const { dir } = await trainedRun();
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const { config } = await readRunRecord(dir);
  const dataset = await loadRunDataset(registry, config, dir);
  const model = await RowModel.open({
    gpu,
    kernels,
    registry,
    config,
    info: dataset.info,
    checkpoint: join(dir, "model.safetensors"),
    adaptLr: 1e-2,
    maxSteps: 2,
  });
  try {
    const p = 10;
    const row = textRow(p, () => -1, 0, { offset: FIRST, words: 2 });
    assert.deepStrictEqual(Array.from(row), [
      (FIRST + p) % 2 ** 24,
      Math.floor((FIRST + p) / 2 ** 24),
    ]);
    const logProb = (v: Float32Array, t: number) => {
      const m = Math.max(...v);
      return v[t]! - m - Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
    };
    const argmax = (v: Float32Array) => v.indexOf(Math.max(...v));
    const before = await model.predict(row);
    assert.strictEqual(argmax(before), TEXT.charCodeAt(p), "memorised");
    const target = "Z".charCodeAt(0);
    model.learn(row, target);
    const once = await model.predict(row);
    assert.ok(
      logProb(once, target) - logProb(before, target) > 10,
      `log p(Z) ${logProb(before, target)} → ${logProb(once, target)} after one step`,
    );
    model.learn(row, target);
    assert.strictEqual(argmax(await model.predict(row)), target, "after two steps");
    // Another position keeps its memorised token.
    const other = await model.predict(textRow(30, () => -1, 0, { offset: FIRST, words: 2 }));
    assert.ok(logProb(other, TEXT.charCodeAt(30)) > -0.1, "position 30 still memorised");
  } finally {
    model.dispose();
  }
});

Deno.test("sampleToken: temperature 0 is the argmax; top-k and temperature follow softmax", () => {
  const logits = [0.5, 2, -1, 1.5, 2];
  const random = rng(9);
  assert.strictEqual(sampleToken(logits, { temperature: 0, topK: 0, random }), 1, "ties: lowest");
  assert.strictEqual(
    sampleToken(logits, { temperature: 0, topK: 0, random, exclude: new Set([1, 4]) }),
    3,
  );
  const draws = 20000;
  for (const [temperature, topK] of [[1, 0], [0.5, 3]] as const) {
    const counts = new Float64Array(logits.length);
    for (let i = 0; i < draws; i++) {
      const t = sampleToken(logits, { temperature, topK, random });
      counts[t] = counts[t]! + 1;
    }
    const kept = topK ? [1, 4, 3] : [0, 1, 2, 3, 4];
    const z = kept.reduce((s, i) => s + Math.exp(logits[i]! / temperature), 0);
    logits.forEach((l, i) => {
      const p = kept.includes(i) ? Math.exp(l / temperature) / z : 0;
      const sd = Math.sqrt(p * (1 - p) / draws);
      assert.ok(
        Math.abs(counts[i]! / draws - p) <= 5 * sd + 1e-12,
        `T ${temperature} k ${topK} token ${i}: ${counts[i]! / draws} vs ${p}`,
      );
    });
  }
  assert.throws(() => sampleToken(logits, { temperature: -1, topK: 0, random }), /temperature/);
});
