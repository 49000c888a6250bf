/**
 * `deno task eval` through the CLI: an image run's table, `--json` line and robustness.svg, a
 * transfer with `--adversarial-from`; a binary CSV run's AUROC and F1 with its fitted transform
 * reused; bad flags named. The numbers themselves are checked in tests/eval_test.ts.
 */

import assert from "node:assert";
import { join } from "node:path";
import { cifarRecords, learnableImages, tempDirWith } from "./helpers/data_files.ts";
import { rng } from "./helpers/random.ts";
import { runCli } from "./helpers/cli.ts";

async function cli([command, ...args]: string[], cwd: string) {
  const out = await runCli(command!, args, cwd);
  return { ...out, last: () => JSON.parse(out.stdout.trim().split("\n").at(-1)!) };
}

Deno.test("deno task eval: an image run's table, JSON, robustness.svg and a transfer", async () => {
  const train = learnableImages(192, [3, 32, 32], 4, 2);
  const test = learnableImages(45, [3, 32, 32], 4, 3);
  const cwd = await tempDirWith({
    "data_batch_1.bin": cifarRecords(train.images, [train.labels]),
    "test_batch.bin": cifarRecords(test.images, [test.labels]),
  }, "user-");
  try {
    const trained = await cli([
      "train",
      ...["--dataset", "cifar10", "--data", ".", "--model", "mlp", "--widths", "16"],
      ...["--epochs", "2", "--lr", "0.003", "--batch-size", "32", "--out", "run", "--json"],
    ], cwd);
    assert.strictEqual(trained.code, 0, trained.stderr);
    const flags = ["--fgsm-eps", "0,0.05,0.2", "--pgd-eps", "0.05", "--pgd-steps", "2"];
    const plain = await cli(
      ["eval", "--run", "run", ...flags, "--tta", "flip,crop", "--speed-batch", "64", "--json"],
      cwd,
    );
    assert.strictEqual(plain.code, 0, plain.stderr);
    const r = plain.last();
    assert.strictEqual(r.test_accuracy, trained.last().test_accuracy);
    assert.deepStrictEqual(r.fgsm.map((p: { eps: number }) => p.eps), [0, 0.05, 0.2]);
    assert.strictEqual(r.fgsm[0].accuracy, r.test_accuracy);
    assert.strictEqual(r.pgd.length, 1);
    assert.strictEqual(r.tta.views, 10);
    // cifar10 has ten classes whatever labels the data use.
    assert.strictEqual(r.confusion.length, 10);
    assert.strictEqual(r.per_class.length, 10);
    assert.ok(r.params === 3072 * 16 + 16 + 16 * 10 + 10 && r.flops_per_sample > 2 * 3072 * 16);
    assert.ok(r.speed.latency_ms > 0 && r.speed.throughput > 0);
    assert.match(plain.stderr, /^FGSM {6}0\.05000/m);
    assert.match(plain.stderr, /^TTA \(flip\+crop, 10 views/m);
    assert.match(plain.stderr, /^speed: latency .* ms per sample at batch 1/m);
    const svg = await Deno.readTextFile(join(cwd, "run", "robustness.svg"));
    assert.ok(svg.startsWith("<svg") && svg.includes("PGD-2") && svg.includes("FGSM"));
    // Crafted on the same model through --adversarial-from: the white-box numbers.
    const transfer = await cli(
      ["eval", "--run", "run", "--adversarial-from", "run", ...flags, "--tta", "none"],
      cwd,
    );
    assert.strictEqual(transfer.code, 0, transfer.stderr);
    assert.match(
      transfer.stdout,
      new RegExp(`^FGSM {6}0\\.20000 .*${pctOf(r.fgsm[2].accuracy)}`, "m"),
    );
    await Deno.stat(join(cwd, "run", "robustness-from-run.svg"));
    const bad = await cli(["eval", "--run", "run", "--fgsm-eps", "0.1,2"], cwd);
    assert.strictEqual(bad.code, 1);
    assert.match(bad.stderr, /--fgsm-eps: "2" is not a radius in \[0, 1\] pixel units/);
    const missing = await cli(["eval", "--run", "nowhere"], cwd);
    assert.strictEqual(missing.code, 1);
    assert.match(missing.stderr, /--run .*nowhere: no such folder/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

function pctOf(v: number): string {
  return `${(100 * v).toFixed(2)}%`.replace(".", "\\.");
}

/** Two classes that follow a column, plus noise. */
function binaryCsv(n: number, seed: number): string {
  const next = rng(seed);
  const lines = ["a,b,kind,label"];
  for (let i = 0; i < n; i++) {
    const yes = next() < 0.5;
    const a = (yes ? 1 : -1) + 1.5 * (next() - 0.5);
    lines.push(
      `${a.toFixed(3)},${next().toFixed(3)},${next() < 0.5 ? "x" : "y"},${yes ? "yes" : "no"}`,
    );
  }
  return lines.join("\n") + "\n";
}

Deno.test("deno task eval: a binary CSV run gets AUROC and F1, no attacks; attacks on it are refused", async () => {
  const cwd = await tempDirWith({ "t.csv": binaryCsv(300, 4) }, "user-");
  try {
    const trained = await cli([
      "train",
      ...["--dataset", "csv", "--data", "t.csv", "--model", "mlp", "--widths", "8"],
      ...["--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--out", "run", "--json"],
    ], cwd);
    assert.strictEqual(trained.code, 0, trained.stderr);
    const ev = await cli(["eval", "--run", "run", "--speed-batch", "0", "--json"], cwd);
    assert.strictEqual(ev.code, 0, ev.stderr);
    const r = ev.last();
    assert.strictEqual(r.test_accuracy, trained.last().test_accuracy);
    assert.ok(r.auroc > 0.8 && r.auroc <= 1, `AUROC ${r.auroc}`);
    assert.strictEqual(r.per_class.length, 2);
    assert.deepStrictEqual([r.fgsm, r.pgd, r.tta, r.speed], [[], [], undefined, undefined]);
    const attacked = await cli(["eval", "--run", "run", "--fgsm-eps", "0.1"], cwd);
    assert.strictEqual(attacked.code, 1);
    assert.match(attacked.stderr, /FGSM\/PGD need an image dataset/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
