/**
 * `deno task predict`: on a run's own test split it reproduces the run's test accuracy (a CSV run
 * and an IDX run), and on new CSV rows — columns reordered, an extra column, no label, a category
 * never seen — it writes, through the run's saved transform (not refitted), the probabilities of
 * the run's model: checked against a float64 forward of the checkpoint's weights.
 */

import assert from "node:assert";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { Graph } from "../core/graph/graph.ts";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import { parseCsv } from "../datasets/csv_table.ts";
import { applyTransform } from "../datasets/csv_transform.ts";
import { interpret } from "./reference/graph_interpreter.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { lastJson, runCli } from "./helpers/cli.ts";
import { gzip, idx, learnableImages, tempDirWith } from "./helpers/data_files.ts";
import { rng } from "./helpers/random.ts";

/** Rows whose class follows a heavy-tailed column and a category, plus noise. */
function trafficRows(n: number, seed: number): string[][] {
  const next = rng(seed);
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    const attack = next() < 0.4;
    const bytes = Math.floor((attack ? 1e7 : 1e3) * (0.5 + next()) * (next() < 0.1 ? 1e3 : 1));
    const proto = attack ? (next() < 0.8 ? "udp" : "tcp") : (next() < 0.8 ? "tcp" : "udp");
    rows.push([(next() * 10).toFixed(2), String(bytes), proto, attack ? "attack" : "normal"]);
  }
  return rows;
}

const csvText = (header: string[], rows: string[][]) =>
  [header, ...rows].map((r) => r.join(",")).join("\n") + "\n";

const HEADER = ["duration", "bytes", "proto", "label"];

Deno.test("deno task predict: a CSV run's test file reproduces its test accuracy; new rows get the model's probabilities", async () => {
  // New rows: reordered columns, an extra one, no label, and a protocol never seen ("icmp").
  const fresh = [
    ["a", "udp", "3.50", "12000000"],
    ["b", "tcp", "0.10", "800"],
    ["c", "icmp", "9.99", "1500"],
    ["d", "tcp", "5.00", "9000000000"],
  ];
  const cwd = await tempDirWith({
    "train.csv": csvText(HEADER, trafficRows(320, 1)),
    "test.csv": csvText(HEADER, trafficRows(100, 2)),
    "new.csv": csvText(["id", "proto", "duration", "bytes"], fresh),
  }, "user-");
  try {
    const train = await runCli("train", [
      ...["--dataset", "csv", "--data", "train.csv", "--test-data", "test.csv"],
      ...["--model", "mlp", "--widths", "12", "--epochs", "3", "--batch-size", "32"],
      ...["--lr", "0.01", "--out", "run", "--json"],
    ], cwd);
    assert.strictEqual(train.code, 0, train.stderr);
    const summary = lastJson(train.stdout);

    const onTest = await runCli("predict", ["--run", "run", "--data", "test.csv", "--json"], cwd);
    assert.strictEqual(onTest.code, 0, onTest.stderr);
    const predicted = lastJson(onTest.stdout);
    assert.strictEqual(predicted.rows, 100);
    assert.strictEqual(predicted.accuracy, summary.test_accuracy);
    // The default output sits beside the input; its prediction column gives the same accuracy.
    const written = parse(await Deno.readTextFile(join(cwd, "test.predictions.csv")), {
      columns: true,
    }) as Record<string, string>[];
    assert.strictEqual(written.length, 100);
    const right = written.filter((r) => r.label === r.prediction).length;
    assert.strictEqual(right / 100, summary.test_accuracy);

    const out = await runCli("predict", [
      ...["--run", "run", "--data", "new.csv", "--out", "new-out.csv"],
    ], cwd);
    assert.strictEqual(out.code, 0, out.stderr);
    const text = await Deno.readTextFile(join(cwd, "new-out.csv"));
    const lines = text.trim().split("\n");
    assert.strictEqual(lines[0], "row,prediction,p_attack,p_normal");
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    assert.strictEqual(rows.length, fresh.length);

    // The reference: the saved transform applied to the new rows, then a float64 forward of the
    // checkpoint's weights and a softmax.
    const saved = JSON.parse(await Deno.readTextFile(join(cwd, "run", "dataset.json")));
    const transform = saved.fitted;
    const table = parseCsv(await Deno.readTextFile(join(cwd, "new.csv")), "new.csv");
    const index = transform.columns.map((c: { name: string }) => table.header.indexOf(c.name));
    const { samples } = applyTransform(
      transform,
      table,
      Uint32Array.from(fresh, (_, i) => i),
      index,
      -1,
      "error",
    );
    const record = JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json")));
    const registry = builtinRegistry();
    const config = resolveConfig(registry, [{ source: "config.json", values: record.config }]);
    const features = samples.length / fresh.length;
    const g = new Graph(fresh.length);
    const x = g.input("x", features);
    const logits = registry.get("model", "mlp").build(g, x, config, {
      features,
      classes: 2,
    });
    const { tensors } = await readSafetensors(join(cwd, "run", "model.safetensors"));
    const params = new Map(
      g.params.map((p) => [p.name, Float64Array.from(toFloat32(tensors[p.name]!))]),
    );
    const values = interpret(g, { params, input: Float64Array.from(samples), labels: [] }).get(
      logits,
    )!;
    const expected: number[] = [];
    for (let r = 0; r < fresh.length; r++) {
      const z = [values[2 * r]!, values[2 * r + 1]!];
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e[0]! + e[1]!;
      expected.push(e[0]! / sum, e[1]! / sum);
      assert.strictEqual(rows[r]!.prediction, z[0]! >= z[1]! ? "attack" : "normal", `row ${r}`);
      assert.strictEqual(rows[r]!.row, String(r));
    }
    const got = rows.flatMap((r) => [Number(r.p_attack), Number(r.p_normal)]);
    assertClose(Float64Array.from(got), Float64Array.from(expected), {
      atol: 2e-5,
      rtol: 1e-4,
      label: "predicted probabilities vs float64 forward",
    });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task predict: an IDX run's test split (a directory, gzipped) reproduces its test accuracy", async () => {
  const train = learnableImages(240, [1, 8, 8], 4, 5);
  const test = learnableImages(70, [1, 8, 8], 4, 6);
  const cwd = await tempDirWith({
    "train-images-idx3-ubyte": idx(2051, [240, 8, 8], train.images),
    "train-labels-idx1-ubyte": idx(2049, [240], train.labels),
    // The test split gzipped: predict streams it through the decompressor.
    "t10k-images-idx3-ubyte.gz": await gzip(idx(2051, [70, 8, 8], test.images)),
    "t10k-labels-idx1-ubyte.gz": await gzip(idx(2049, [70], test.labels)),
  }, "user-");
  try {
    const run = await runCli("train", [
      ...["--dataset", "idx", "--data", ".", "--model", "mlp", "--widths", "16"],
      ...["--epochs", "2", "--batch-size", "32", "--lr", "0.003", "--out", "run", "--json"],
    ], cwd);
    assert.strictEqual(run.code, 0, run.stderr);
    const summary = lastJson(run.stdout);
    // A batch size that does not divide the 70 rows: the last batch is partial.
    const out = await runCli("predict", [
      ...["--run", "run", "--data", ".", "--out", "p.csv", "--batch-size", "16", "--json"],
    ], cwd);
    assert.strictEqual(out.code, 0, out.stderr);
    const predicted = lastJson(out.stdout);
    assert.strictEqual(predicted.rows, 70);
    assert.strictEqual(predicted.accuracy, summary.test_accuracy);
    const lines = (await Deno.readTextFile(join(cwd, "p.csv"))).trim().split("\n");
    assert.strictEqual(lines[0], "row,label,prediction,p_0,p_1,p_2,p_3");
    assert.strictEqual(lines.length, 71);
    let right = 0;
    for (const line of lines.slice(1)) {
      const [, label, prediction, ...rest] = line.split(",");
      const p = rest.map(Number);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4, line);
      // The prediction is the most probable class, named by its index.
      assert.strictEqual(prediction, String(p.indexOf(Math.max(...p))), line);
      if (label === prediction) right++;
    }
    assert.strictEqual(right / 70, summary.test_accuracy);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
