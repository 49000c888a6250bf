/**
 * `csv`: a tabular dataset from `--data train.csv [--test-data test.csv]` with a header row.
 * The label is `--label-column` (default: the last column); `--ignore-columns` drops columns
 * (ids, a second label). Numeric columns are scaled and others one-hot encoded by a transform
 * fitted on the rows the model trains on only (not the test split, not the validation split;
 * datasets/csv_transform.ts); without `--test-data` a seeded, stratified `--test-split` of the
 * file is the test set. The fitted transform is returned as `fitted`, saved with the run and
 * reapplied on `--resume`.
 *
 * @module
 */

import { DataError } from "../core/io/data_files.ts";
import { validationSplit } from "../core/train/load_data.ts";
import type { Config, DatasetPlugin, DatasetSplits } from "../core/train/registry.ts";
import { stratifiedSplit } from "../core/train/split.ts";
import { columnIndex, type CsvTable, readCsv } from "./csv_table.ts";
import {
  applyTransform,
  type CategoricalColumn,
  columnWidth,
  CSV_TRANSFORM_FORMAT,
  type CsvTransform,
  fitNumeric,
  isMissing,
  type MissingPolicy,
  type NumericColumn,
  parseNumber,
  sortClasses,
} from "./csv_transform.ts";

function list(value: unknown): string[] {
  return String(value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** Whether most of a column's present cells are numbers (then a non-number is an error). */
function looksNumeric(table: CsvTable, column: number): boolean {
  let numbers = 0;
  let present = 0;
  for (const row of table.rows) {
    const cell = row[column]!;
    if (isMissing(cell)) continue;
    present++;
    if (parseNumber(cell) !== undefined) numbers++;
  }
  return numbers * 2 >= present;
}

/** Fits the transform on rows `fit` of the training table. */
function fit(
  table: CsvTable,
  features: number[],
  labelIndex: number,
  fitRows: ArrayLike<number>,
  classes: string[],
  categorical: Set<string>,
  clip: number,
): CsvTransform {
  const columns = features.map((col): NumericColumn | CategoricalColumn => {
    const name = table.header[col]!;
    if (!categorical.has(name) && looksNumeric(table, col)) {
      const values: number[] = [];
      for (let i = 0; i < fitRows.length; i++) {
        const v = parseNumber(table.rows[fitRows[i]!]![col]!);
        if (v !== undefined) values.push(v);
      }
      return fitNumeric(name, Float64Array.from(values));
    }
    const seen = new Set<string>();
    for (let i = 0; i < fitRows.length; i++) {
      const cell = table.rows[fitRows[i]!]![col]!;
      if (!isMissing(cell)) seen.add(cell.trim());
    }
    return { name, kind: "categorical", categories: [...seen].sort() };
  });
  return {
    format: CSV_TRANSFORM_FORMAT,
    label: table.header[labelIndex]!,
    classes,
    columns,
    clip,
  };
}

/** A saved transform, checked against the file it is applied to. */
function savedTransform(fitted: unknown, table: CsvTable): CsvTransform {
  const t = fitted as CsvTransform;
  if (t?.format !== CSV_TRANSFORM_FORMAT || !Array.isArray(t.columns)) {
    throw new DataError(
      `the run's saved CSV transform is not in the format "${CSV_TRANSFORM_FORMAT}"`,
    );
  }
  for (const c of [...t.columns.map((c) => c.name), t.label]) columnIndex(table, c, "fitted");
  return t;
}

function labelsOf(table: CsvTable, labelIndex: number): string[] {
  return table.rows.map((r, i) => {
    const label = r[labelIndex]!.trim();
    if (isMissing(label)) {
      throw new DataError(
        `${table.path}: line ${table.lines[i]}: the label (column "${
          table.header[labelIndex]
        }") is missing`,
      );
    }
    return label;
  });
}

/** The `csv` dataset plugin. */
export const csvDataset: DatasetPlugin = {
  kind: "dataset",
  name: "csv",
  description:
    "tabular CSV: --data train.csv [--test-data test.csv], --label-column (default last); robust scaling + one-hot fitted on the training rows",
  defaults: {
    data: "",
    test_data: "",
    label_column: "",
    ignore_columns: "",
    categorical_columns: "",
    test_split: 0.2,
    missing: "error",
    csv_clip: 5,
    csv_delimiter: ",",
  },
  paths: ["data", "test_data"],
  async load(config: Config, fitted?: unknown): Promise<DatasetSplits> {
    const path = String(config.data ?? "");
    if (!path) throw new DataError("csv: --data FILE.csv is required");
    const missing = String(config.missing ?? "error") as MissingPolicy;
    if (missing !== "error" && missing !== "impute") {
      throw new RangeError(`missing must be "error" or "impute", got "${missing}"`);
    }
    const clip = Number(config.csv_clip);
    if (!(clip > 0)) throw new RangeError(`csv_clip must be > 0, got ${config.csv_clip}`);
    const delimiter = String(config.csv_delimiter || ",");
    const table = await readCsv(path, delimiter);
    const labelName = String(config.label_column || table.header.at(-1)!);
    const labelIndex = columnIndex(table, labelName, "--label-column");
    const ignored = new Set(list(config.ignore_columns));
    for (const name of [...ignored, ...list(config.categorical_columns)]) {
      columnIndex(table, name, "named by --ignore-columns or --categorical-columns");
    }
    const features = table.header.map((_, i) => i)
      .filter((i) => i !== labelIndex && !ignored.has(table.header[i]!));
    if (features.length === 0) {
      throw new DataError(`${path}: no feature columns besides the label "${labelName}"`);
    }
    const labelNames = labelsOf(table, labelIndex);
    const testPath = String(config.test_data ?? "");
    const testTable = testPath ? await readCsv(testPath, delimiter) : undefined;
    const testLabelIndex = testTable ? columnIndex(testTable, labelName, "the label") : labelIndex;
    const testLabels = testTable ? labelsOf(testTable, testLabelIndex) : [];
    const saved = fitted !== undefined ? savedTransform(fitted, table) : undefined;
    // Classes from both files, so a class only the test file has still counts (as an error).
    const classes = saved?.classes ?? sortClasses([...labelNames, ...testLabels]);
    const classIds = new Map(classes.map((c, i) => [c, i]));
    const ids = labelNames.map((l) => classIds.get(l) ?? 0);
    const testSplit = Number(config.test_split);
    if (!testTable && !(testSplit > 0 && testSplit < 1)) {
      throw new RangeError(
        `test_split must be in (0, 1) without --test-data, got ${config.test_split}`,
      );
    }
    // Without a test file, a seeded, stratified part of this one.
    const split = testTable
      ? { keep: Uint32Array.from(ids, (_, i) => i), heldOut: new Uint32Array() }
      : stratifiedSplit(
        ids,
        ids.length,
        testSplit,
        Number(config.seed ?? 0) ^ 0x7e57,
      );
    if (split.keep.length === 0) {
      throw new DataError(`${path}: no training rows left after the test split`);
    }
    // Fitted on the rows the model trains on: the run's validation rows are left out too (the
    // same seeded split the trainer makes of these labels).
    const trainIds = Array.from(split.keep, (r) => ids[r]!);
    const fitRows = Array.from(
      validationSplit(config, trainIds, trainIds.length).keep,
      (i) => split.keep[i]!,
    );
    const categorical = new Set(list(config.categorical_columns));
    const transform = saved ??
      fit(table, features, labelIndex, fitRows, classes, categorical, clip);
    const apply = (t: CsvTable, rows: ArrayLike<number>, labelAt: number) =>
      applyTransform(
        transform,
        t,
        rows,
        transform.columns.map((c) => columnIndex(t, c.name, "a fitted column")),
        labelAt,
        missing,
      );
    const train = apply(table, split.keep, labelIndex);
    const test = testTable
      ? apply(testTable, Uint32Array.from(testTable.rows, (_, i) => i), testLabelIndex)
      : apply(table, split.heldOut, labelIndex);
    const width = transform.columns.reduce((n, c) => n + columnWidth(c), 0);
    return {
      info: { features: width, classes: transform.classes.length },
      train: { samples: train.samples, labels: train.labels, count: split.keep.length },
      test: { samples: test.samples, labels: test.labels, count: test.labels.length },
      mean: [0],
      std: [1],
      fitted: transform,
    };
  },
};
