import assert from "node:assert";
import { join } from "node:path";
import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { validationSplit } from "../core/train/load_data.ts";
import type { Config } from "../core/train/registry.ts";
import type { CsvTransform } from "../datasets/csv_transform.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { rng } from "./helpers/random.ts";
import { tempDirWith } from "./helpers/data_files.ts";
import { fitColumnRef, scaleRef } from "./reference/csv_scaling.ts";

function load(values: Config, fitted?: unknown) {
  const c = resolveConfig(builtinRegistry(), [{
    source: "test",
    values: { dataset: "csv", ...values },
  }]);
  return builtinRegistry().get("dataset", "csv").load(c, fitted);
}

const NUMERIC = ["bytes", "temp", "const", "flag"];
const PROTOS = ["icmp", "tcp", "udp"];
const LABELS = ["attack", "normal", "scan"];

/** Rows of network-traffic-like data: columns differ by nine orders of magnitude. */
function table(n: number, seed: number, extraProto?: string) {
  const next = rng(seed);
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    const u = next();
    rows.push([
      String(Math.floor(1e9 * u ** 8)), // heavy tail, ≥ 0
      (20 + 10 * (next() - 0.5)).toFixed(3), // around 20, negative never
      "7", // no spread
      next() < 0.05 ? "1" : "0", // zero IQR
      extraProto && i % 7 === 0 ? extraProto : PROTOS[Math.floor(next() * 3)]!,
      LABELS[Math.floor(next() * 3)]!,
    ]);
  }
  return rows;
}

function csv(rows: string[][]): string {
  return ["bytes,temp,const,flag,proto,label", ...rows.map((r) => r.join(","))].join("\n") + "\n";
}

/** The expected features of rows through a transform fitted (in float64) on `fitRows`. */
function reference(
  rows: string[][],
  fitRows: string[][],
  categories: string[],
  clip = 5,
): Float64Array {
  const fits = NUMERIC.map((_, c) => fitColumnRef(fitRows.map((r) => Number(r[c]))));
  const width = NUMERIC.length + categories.length + 1;
  const out = new Float64Array(rows.length * width);
  rows.forEach((r, i) => {
    NUMERIC.forEach((_, c) => (out[i * width + c] = scaleRef(Number(r[c]), fits[c]!, clip)));
    const k = categories.indexOf(r[4]!);
    out[i * width + NUMERIC.length + (k < 0 ? categories.length : k)] = 1;
  });
  return out;
}

Deno.test("csv: robust scaling and one-hot fitted on the training rows match a float64 reference", async () => {
  const train = table(240, 1);
  const test = table(40, 2, "sctp");
  const dir = await tempDirWith({ "train.csv": csv(train), "test.csv": csv(test) });
  try {
    const data = await load({
      data: join(dir, "train.csv"),
      test_data: join(dir, "test.csv"),
      val_split: 0.25,
    });
    const t = data.fitted as CsvTransform;
    assert.strictEqual(data.info.features, 4 + 3 + 1);
    assert.strictEqual(data.info.classes, 3);
    assert.deepStrictEqual(t.classes, LABELS);
    const byName = Object.fromEntries(t.columns.map((c) => [c.name, c]));
    assert.strictEqual((byName.bytes as { log: boolean }).log, true, "heavy-tailed → log1p");
    assert.strictEqual((byName.temp as { log: boolean }).log, false);
    assert.strictEqual((byName.const as { scale: number }).scale, 1, "no spread → scale 1");
    assert.ok(
      Number.isFinite((byName.flag as { scale: number }).scale),
      "zero IQR → a finite scale",
    );
    assert.deepStrictEqual((byName.proto as { categories: string[] }).categories, PROTOS);
    // Fitted on the rows the model trains on: the validation rows are left out.
    const ids = train.map((r) => LABELS.indexOf(r[5]!));
    const c = resolveConfig(builtinRegistry(), [{
      source: "test",
      values: { dataset: "csv", val_split: 0.25 },
    }]);
    const fitRows = Array.from(validationSplit(c, ids, ids.length).keep, (i) => train[i]!);
    assert.strictEqual(fitRows.length, 180);
    const label = "csv train features";
    assertClose(data.train.samples as Float32Array, reference(train, fitRows, PROTOS), {
      atol: 1e-6,
      rtol: 1e-6,
      label,
    });
    assertClose(data.test.samples as Float32Array, reference(test, fitRows, PROTOS), {
      atol: 1e-6,
      rtol: 1e-6,
      label: "csv test features (sctp → unknown)",
    });
    assert.ok(Array.from(data.train.samples).every((v) => Math.abs(v) <= 5), "clipped to ±5");
    assert.deepStrictEqual(Array.from(data.test.labels), test.map((r) => LABELS.indexOf(r[5]!)));
    // The saved transform is applied as it is to other data (--resume), not refitted.
    const doubled = train.map((r) => [String(2 * Number(r[0])), ...r.slice(1)]);
    await Deno.writeTextFile(join(dir, "train.csv"), csv(doubled));
    const resumed = await load({
      data: join(dir, "train.csv"),
      test_data: join(dir, "test.csv"),
      val_split: 0.25,
    }, JSON.parse(JSON.stringify(t)));
    assertClose(resumed.train.samples as Float32Array, reference(doubled, fitRows, PROTOS), {
      atol: 1e-6,
      rtol: 1e-6,
      label: "the saved transform on other values",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("csv: without --test-data a seeded, stratified test split; integer labels sort as numbers", async () => {
  const rows = Array.from(
    { length: 50 },
    (_, i) => [String(i), String(i % 5 === 0 ? 10 : i % 2 === 0 ? 9 : 2)],
  );
  const dir = await tempDirWith({ "t.csv": "x,y\n" + rows.map((r) => r.join(",")).join("\n") });
  try {
    const data = await load({ data: join(dir, "t.csv") });
    assert.deepStrictEqual((data.fitted as CsvTransform).classes, ["2", "9", "10"]);
    assert.strictEqual(data.test.count, 10);
    assert.strictEqual(data.train.count, 40);
    const count = (labels: ArrayLike<number>, c: number) =>
      Array.from(labels).filter((l) => l === c).length;
    // 10 rows of class "10", 20 each of "9" and "2": the test split keeps 2, 4 and 4.
    assert.deepStrictEqual([0, 1, 2].map((c) => count(data.test.labels, c)), [4, 4, 2]);
    const again = await load({ data: join(dir, "t.csv") });
    assert.deepStrictEqual(again.test.samples, data.test.samples, "seeded");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("csv: missing cells are an error or imputed, as --missing says", async () => {
  const dir = await tempDirWith({ "m.csv": "a,b,label\n1,,x\n2,3,y\n4,5,x\n6,NA,y\n" });
  const path = join(dir, "m.csv");
  try {
    await assert.rejects(load({ data: path, test_split: 0.25 }), (e: Error) => {
      assert.strictEqual(e.message.split("\n").length, 1);
      // Row 1 or row 4 (lines 2 and 5), whichever the test split left in training, fails first.
      assert.match(
        e.message,
        /m\.csv: line [25]: column "b" is missing \("(NA)?"\); --missing impute/,
      );
      return true;
    });
    const data = await load({ data: path, test_split: 0.25, missing: "impute" });
    assert.ok(Array.from(data.train.samples).every(Number.isFinite));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("csv: ragged, garbage, empty and label-less files fail with FILE: line N", async () => {
  const cases: [string, Config, RegExp][] = [
    [
      "a,b,label\n1,2,x\n3,4\n5,6,y\n",
      {},
      /: line 3: 2 cells, but the header \(line 1\) has 3 columns$/,
    ],
    [
      "a,b,label\n1,2,x\n3,zz,y\n4,5,x\n",
      { test_split: 0.3 },
      /: line 3: column "b" is numeric but holds "zz"; --categorical-columns b/,
    ],
    ["", {}, /: empty file$/],
    ["a,b,label\n", {}, /: no data rows after the header \(line 1\)$/],
    [
      "a,b,label\n1,2,x\n",
      { label_column: "target" },
      /: no column "target" \(--label-column\); the columns are "a", "b", "label"$/,
    ],
    ['a,b,label\n1,"2,x\n3,4,y\n', {}, /: line \d+: Quote Not Closed/],
  ];
  for (const [text, values, pattern] of cases) {
    const dir = await tempDirWith({ "bad.csv": text });
    try {
      await assert.rejects(load({ data: join(dir, "bad.csv"), ...values }), (e: Error) => {
        assert.strictEqual(e.name, "DataError");
        assert.ok(e.message.startsWith(join(dir, "bad.csv")), e.message);
        assert.ok(!e.message.includes("\n"), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
