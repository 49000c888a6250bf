import assert from "node:assert";
import { join } from "node:path";
import { cifarRecords, learnableImages, tempDirWith } from "./helpers/data_files.ts";
import { rng } from "./helpers/random.ts";
import { runCli } from "./helpers/cli.ts";

const trainCli = (args: string[], cwd: string) => runCli("train", args, cwd);

/** A tabular set: the class follows a heavy-tailed column and a category, plus noise. */
function trafficCsv(n: number, seed: number): string {
  const next = rng(seed);
  const lines = ["duration,bytes,proto,label"];
  for (let i = 0; i < n; i++) {
    const attack = next() < 0.4;
    const bytes = Math.floor((attack ? 1e7 : 1e3) * (0.5 + next()) * (next() < 0.1 ? 1e3 : 1));
    const proto = attack ? (next() < 0.8 ? "udp" : "tcp") : (next() < 0.8 ? "tcp" : "udp");
    lines.push(`${(next() * 10).toFixed(2)},${bytes},${proto},${attack ? "attack" : "normal"}`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("deno task train: a CSV trains through the CLI, its fitted transform saved for --resume", async () => {
  const cwd = await tempDirWith({ "traffic.csv": trafficCsv(400, 1) }, "user-");
  try {
    const args = ["--dataset", "csv", "--data", "traffic.csv", "--model", "mlp", "--widths", "16"];
    const { code, stdout, stderr } = await trainCli([
      ...args,
      "--epochs",
      "3",
      "--batch-size",
      "32",
      "--lr",
      "0.01",
      "--out",
      "run",
      "--json",
    ], cwd);
    assert.strictEqual(code, 0, stderr);
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.ok(summary.test_accuracy > 0.8, `test accuracy ${summary.test_accuracy}`);
    const saved = JSON.parse(await Deno.readTextFile(join(cwd, "run", "dataset.json")));
    assert.strictEqual(saved.dataset, "csv");
    assert.deepStrictEqual(saved.fitted.classes, ["attack", "normal"]);
    assert.strictEqual(saved.fitted.columns[1].log, true, "bytes is heavy-tailed: log1p");
    // --resume reads the saved transform (here: one that names another dataset, so it says so).
    await Deno.writeTextFile(
      join(cwd, "run", "dataset.json"),
      JSON.stringify({ ...saved, dataset: "text" }),
    );
    const resumed = await trainCli(["--resume", "run"], cwd);
    assert.strictEqual(resumed.code, 1);
    assert.match(resumed.stderr, /dataset\.json: fitted for dataset "text", the run's is "csv"/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task train: a CIFAR-format directory trains through the CLI with augmentation", async () => {
  const train = learnableImages(320, [3, 32, 32], 4, 2);
  const test = learnableImages(80, [3, 32, 32], 4, 3);
  const cwd = await tempDirWith({
    "data_batch_1.bin": cifarRecords(train.images.subarray(0, 160 * 3072), [
      train.labels.subarray(0, 160),
    ]),
    "data_batch_2.bin": cifarRecords(train.images.subarray(160 * 3072), [
      train.labels.subarray(160),
    ]),
    "test_batch.bin": cifarRecords(test.images, [test.labels]),
  }, "user-");
  try {
    const { code, stdout, stderr } = await trainCli([
      "--dataset",
      "cifar10",
      "--data",
      ".",
      "--model",
      "mlp",
      "--widths",
      "32",
      "--epochs",
      "3",
      "--lr",
      "0.003",
      "--batch-size",
      "32",
      "--hflip",
      "0.5",
      "--crop-padding",
      "2",
      "--out",
      "run",
      "--json",
    ], cwd);
    assert.strictEqual(code, 0, stderr);
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.ok(summary.test_accuracy > 0.6, `test accuracy ${summary.test_accuracy}`);
    assert.match(stderr, /data: 320 train, 0 validation, 80 test/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task train: a run whose data fail to load writes nothing", async () => {
  const cwd = await tempDirWith({ "bad.csv": "a,b,label\n1,2,x\n3,4\n" }, "user-");
  try {
    const { code, stderr } = await trainCli(
      ["--dataset", "csv", "--data", "bad.csv", "--model", "mlp", "--out", "run"],
      cwd,
    );
    assert.strictEqual(code, 1);
    assert.match(stderr, /bad\.csv: line 3: 2 cells, but the header \(line 1\) has 3 columns/);
    assert.deepStrictEqual([...Deno.readDirSync(cwd)].map((e) => e.name), ["bad.csv"]);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
