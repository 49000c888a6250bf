/**
 * A CSV file as a table of strings: a header row and data rows of the same width, parsed by the
 * `csv-parse` library (RFC 4180: quoted cells, embedded delimiters and newlines, a BOM), with
 * every problem reported as one line `FILE: line N: …` (the header being line 1).
 *
 * @module
 */

import { parse } from "csv-parse/sync";
import { DataError, readDataFile } from "../core/io/data_files.ts";

/** A parsed CSV file. */
export interface CsvTable {
  path: string;
  /** Column names, trimmed. */
  header: string[];
  /** Data rows, each as wide as the header. */
  rows: string[][];
  /** The line of the file each data row ends on (1-based; the header is line 1). */
  lines: number[];
}

interface Parsed {
  record: string[];
  info: { lines: number };
}

/** Parses CSV text; `path` names the file in errors. */
export function parseCsv(text: string, path: string, delimiter = ","): CsvTable {
  if (text.trim() === "") throw new DataError(`${path}: empty file`);
  let records: Parsed[];
  try {
    records = parse(text, {
      delimiter,
      info: true,
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as Parsed[];
  } catch (e) {
    const line = (e as { lines?: number }).lines;
    throw new DataError(`${path}: ${line ? `line ${line}: ` : ""}${(e as Error).message}`);
  }
  const [head, ...body] = records;
  const header = head!.record.map((name, i) => name.trim() || `column ${i + 1}`);
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    if (seen.has(name)) {
      throw new DataError(
        `${path}: line 1: column "${name}" appears twice (columns ${seen.get(name)! + 1} and ${
          i + 1
        })`,
      );
    }
    seen.set(name, i);
  });
  if (body.length === 0) throw new DataError(`${path}: no data rows after the header (line 1)`);
  for (const r of body) {
    if (r.record.length !== header.length) {
      throw new DataError(
        `${path}: line ${r.info.lines}: ${r.record.length} cells, but the header (line 1) has ${header.length} columns`,
      );
    }
  }
  return { path, header, rows: body.map((r) => r.record), lines: body.map((r) => r.info.lines) };
}

/** Reads and parses a CSV file (plain or gzipped, UTF-8). */
export async function readCsv(path: string, delimiter = ","): Promise<CsvTable> {
  const bytes = await readDataFile(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(`${path}: not UTF-8 text`);
  }
  return parseCsv(text, path, delimiter);
}

/** The index of a column by name; fails listing the columns. */
export function columnIndex(table: CsvTable, name: string, role: string): number {
  const i = table.header.indexOf(name);
  if (i < 0) {
    throw new DataError(
      `${table.path}: no column "${name}" (${role}); the columns are ${
        table.header.map((h) => `"${h}"`).join(", ")
      }`,
    );
  }
  return i;
}
