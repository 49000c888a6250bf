/**
 * The transform a tabular (CSV) dataset fits on its training rows and applies to every split:
 * numeric columns get robust scaling — log1p first for a heavy-tailed non-negative column, then
 * (v − median)/scale with scale = IQR/1.349 (a normal column's standard deviation), falling back to
 * the standard deviation and then to 1 for a column with no spread, then a clip to ±clip —
 * and other columns are one-hot encoded over the categories seen in fitting, plus an "unknown"
 * slot for categories seen only later. Labels (strings or integers) map to class ids. Everything
 * is computed in float64 and saved as plain JSON with the run.
 *
 * @module
 */

import { DataError } from "../core/io/data_files.ts";
import type { CsvTable } from "./csv_table.ts";

/** The format tag of a saved transform. */
export const CSV_TRANSFORM_FORMAT = "webgpu-trainer/csv-transform/1";

/** A numeric column's fitted scaling: x = clip((log ? log1p(v) : v) − center)/scale. */
export interface NumericColumn {
  name: string;
  kind: "numeric";
  log: boolean;
  center: number;
  scale: number;
}

/** A categorical column's categories (one feature each) and the unknown slot after them. */
export interface CategoricalColumn {
  name: string;
  kind: "categorical";
  categories: string[];
}

/** What a CSV dataset fitted. */
export interface CsvTransform {
  format: typeof CSV_TRANSFORM_FORMAT;
  label: string;
  /** The class names, in class-id order. */
  classes: string[];
  columns: (NumericColumn | CategoricalColumn)[];
  clip: number;
}

/** Cells that count as missing. */
const MISSING = new Set(["", "na", "n/a", "nan", "null", "none", "?"]);
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Whether a cell is missing (empty, NA, NaN, null, ?). */
export function isMissing(cell: string): boolean {
  return MISSING.has(cell.trim().toLowerCase());
}

/** The number a cell holds, or undefined when it is not a plain decimal number. */
export function parseNumber(cell: string): number | undefined {
  const t = cell.trim();
  if (!NUMBER.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/** The q-quantile (0..1) of sorted values, interpolated linearly (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const at = (n - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** The scaling of a numeric column from its values (float64): see the module doc. */
export function fitNumeric(name: string, values: Float64Array): NumericColumn {
  const n = values.length;
  let min = Infinity;
  let mean = 0;
  for (const v of values) {
    min = Math.min(min, v);
    mean += v / n;
  }
  let m2 = 0;
  let m3 = 0;
  for (const v of values) {
    const d = v - mean;
    m2 += (d * d) / n;
    m3 += (d * d * d) / n;
  }
  // Heavy-tailed: a skewness over 2 (an exponential's is 2), as counts and byte sizes have.
  const log = n > 0 && min >= 0 && m2 > 0 && m3 / Math.pow(m2, 1.5) > 2;
  const t = log ? values.map(Math.log1p) : Float64Array.from(values);
  const sorted = t.slice().sort();
  const center = quantile(sorted, 0.5);
  const iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
  let scale = iqr / 1.349;
  if (!(scale > 0)) {
    let s = 0;
    let sq = 0;
    for (const v of t) {
      s += v;
      sq += v * v;
    }
    const variance = n > 0 ? Math.max(0, sq / n - (s / n) ** 2) : 0;
    scale = variance > 0 ? Math.sqrt(variance) : 1;
  }
  return { name, kind: "numeric", log, center, scale };
}

/** Class names sorted as numbers when every one is an integer, else as strings. */
export function sortClasses(names: Iterable<string>): string[] {
  const list = [...new Set(names)];
  const integers = list.every((s) => /^[+-]?\d+$/.test(s));
  return integers ? list.sort((a, b) => Number(a) - Number(b)) : list.sort();
}

/** The features one column gives. */
export function columnWidth(c: NumericColumn | CategoricalColumn): number {
  return c.kind === "numeric" ? 1 : c.categories.length + 1;
}

/** Feature names, for messages: `dur`, `proto=tcp`, `proto=(unknown)`. */
export function featureNames(t: CsvTransform): string[] {
  return t.columns.flatMap((c) =>
    c.kind === "numeric"
      ? [c.name]
      : [...c.categories.map((k) => `${c.name}=${k}`), `${c.name}=(unknown)`]
  );
}

/** How missing cells are handled: an error naming the cell, or imputation. */
export type MissingPolicy = "error" | "impute";

/**
 * Applies the transform to rows of a table whose column `i` of the transform is table column
 * `index[i]` and whose label column is `labelIndex` (-1: the rows have no label; every class id
 * is then 0): features (f32) and class ids. A missing cell
 * fails (policy "error") or becomes the median (numbers: feature 0) or the unknown slot
 * (categories); a non-numeric cell of a numeric column and an unknown label always fail, naming
 * the file and line.
 */
export function applyTransform(
  t: CsvTransform,
  table: CsvTable,
  rows: ArrayLike<number>,
  index: number[],
  labelIndex: number,
  missing: MissingPolicy,
): { samples: Float32Array; labels: Uint32Array } {
  const features = t.columns.reduce((n, c) => n + columnWidth(c), 0);
  const samples = new Float32Array(rows.length * features);
  const labels = new Uint32Array(rows.length);
  const classOf = new Map(t.classes.map((c, i) => [c, i]));
  const lookups = t.columns.map((c) =>
    c.kind === "categorical" ? new Map(c.categories.map((k, i) => [k, i])) : undefined
  );
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const cells = table.rows[row]!;
    const where = `${table.path}: line ${table.lines[row]}`;
    if (labelIndex >= 0) {
      const label = cells[labelIndex]!.trim();
      const id = classOf.get(label);
      if (id === undefined) {
        throw new DataError(
          isMissing(label)
            ? `${where}: the label (column "${t.label}") is missing`
            : `${where}: label "${label}" (column "${t.label}") is not one of the ${t.classes.length} classes fitted`,
        );
      }
      labels[r] = id;
    }
    let f = r * features;
    t.columns.forEach((c, i) => {
      const cell = cells[index[i]!]!;
      if (isMissing(cell) && missing === "error") {
        throw new DataError(
          `${where}: column "${c.name}" is missing ("${cell}"); --missing impute fills missing cells (numbers with the median, categories with the unknown slot)`,
        );
      }
      if (c.kind === "numeric") {
        if (!isMissing(cell)) {
          const v = parseNumber(cell);
          if (v === undefined) {
            throw new DataError(
              `${where}: column "${c.name}" is numeric but holds "${cell}"; --categorical-columns ${c.name} treats it as categories`,
            );
          }
          const x = ((c.log ? Math.log1p(Math.max(v, 0)) : v) - c.center) / c.scale;
          samples[f] = Math.max(-t.clip, Math.min(t.clip, x));
        }
        f += 1;
      } else {
        const k = isMissing(cell) ? undefined : lookups[i]!.get(cell.trim());
        samples[f + (k ?? c.categories.length)] = 1;
        f += c.categories.length + 1;
      }
    });
  }
  return { samples, labels };
}
