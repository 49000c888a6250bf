/**
 * New rows for a trained model (`deno task predict`), read batch by batch so a large file is
 * never held whole: IDX images (with an optional IDX label file), CIFAR binary records (labels
 * included), and CSV rows put through a run's saved transform (its fitted scaling and categories,
 * never refitted; the label column is optional). Every problem is a {@link DataError} naming the
 * file and where in it.
 *
 * @module
 */

import { parse } from "csv-parse/stream";
import { ByteReader } from "../core/io/byte_reader.ts";
import { DataError } from "../core/io/data_files.ts";
import type { RowBatch } from "../core/train/predict.ts";
import { CIFAR_PIXELS, type CifarVariant } from "./cifar.ts";
import { columnIndex, type CsvTable } from "./csv_table.ts";
import { applyTransform, type CsvTransform, type MissingPolicy } from "./csv_transform.ts";
import { idxHeader, idxShape } from "./idx.ts";

/** Rows of one input, read in order. */
export interface RowSource {
  /** The file the rows come from. */
  readonly path: string;
  /** Whether the rows come with labels (then predict reports the accuracy). */
  readonly labelled: boolean;
  /** The rows the file holds, when its header says (IDX). */
  readonly count?: number;
  /** The next batch of at most `rows` rows; undefined at the end. */
  next(rows: number): Promise<RowBatch | undefined>;
  /** Closes the files. */
  close(): Promise<void>;
}

/** The shape of the images a model reads. */
export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

const shapeText = (s: ImageShape) => `${s.channels}×${s.height}×${s.width}`;

async function readIdxDims(reader: ByteReader, labels: boolean): Promise<number[]> {
  const magic = await reader.readExactly(4, "the IDX header");
  const dims = magic[3]!;
  const rest = await reader.readExactly(4 * Math.min(dims, 4), "the IDX header");
  const head = new Uint8Array(4 + rest.length);
  head.set(magic);
  head.set(rest, 4);
  return idxHeader(head, reader.path, labels);
}

/**
 * The rows of an IDX image file, whose images must be of `shape`, with the labels of an IDX
 * label file (same count, each < `classes`) when `labelPath` is given.
 */
export async function idxRows(
  imagePath: string,
  labelPath: string | undefined,
  shape: ImageShape,
  classes: number,
): Promise<RowSource> {
  const images = await ByteReader.open(imagePath);
  const labels = labelPath ? await ByteReader.open(labelPath) : undefined;
  try {
    const found = idxShape(await readIdxDims(images, false));
    if (
      found.channels * found.height * found.width !== shape.channels * shape.height * shape.width
    ) {
      throw new DataError(
        `${imagePath}: images of ${shapeText(found)}, but the run's model reads ${
          shapeText(shape)
        }`,
      );
    }
    const count = found.count;
    if (labels) {
      const [n] = await readIdxDims(labels, true) as [number];
      if (n !== count) {
        throw new DataError(`${labelPath}: ${n} labels but ${imagePath} has ${count} images`);
      }
    }
    const per = shape.channels * shape.height * shape.width;
    let read = 0;
    return {
      path: imagePath,
      labelled: labels !== undefined,
      count,
      async next(rows) {
        const n = Math.min(rows, count - read);
        if (n <= 0) {
          for (const [r, what] of [[images, "images"], [labels, "labels"]] as const) {
            if (r && !(await r.atEnd())) {
              throw new DataError(
                `${r.path}: has trailing bytes after its ${count} ${what} (byte ${r.offset})`,
              );
            }
          }
          return undefined;
        }
        const samples = await images.readExactly(n * per, `images ${read}..${read + n - 1}`);
        let ids: Uint32Array | undefined;
        if (labels) {
          const bytes = await labels.readExactly(n, `labels ${read}..${read + n - 1}`);
          const bad = bytes.findIndex((l) => l >= classes);
          if (bad >= 0) {
            throw new DataError(
              `${labels.path}: label ${read + bad} is ${
                bytes[bad]
              }, but the run's model has ${classes} classes`,
            );
          }
          ids = Uint32Array.from(bytes);
        }
        read += n;
        return { samples, labels: ids, rows: n };
      },
      async close() {
        await images.close();
        await labels?.close();
      },
    };
  } catch (e) {
    await images.close();
    await labels?.close();
    throw e;
  }
}

/** The rows of a CIFAR binary file (labels included): CIFAR-100's `fine` or coarse labels. */
export async function cifarRows(
  path: string,
  variant: CifarVariant,
  fine: boolean,
): Promise<RowSource> {
  const reader = await ByteReader.open(path);
  const [labelBytes, labelIndex, classes] = variant === "cifar10"
    ? [1, 0, 10]
    : fine
    ? [2, 1, 100]
    : [2, 0, 20];
  const record = labelBytes + CIFAR_PIXELS;
  let read = 0;
  return {
    path,
    labelled: true,
    async next(rows) {
      const bytes = await reader.read(rows * record);
      if (bytes.length % record !== 0) {
        throw new DataError(
          `${path}: ${
            read * record + bytes.length
          } bytes is not a whole number of ${record}-byte records (${
            bytes.length % record
          } bytes over)`,
        );
      }
      const n = bytes.length / record;
      if (n === 0) {
        if (read === 0) throw new DataError(`${path}: empty file`);
        return undefined;
      }
      const samples = new Uint8Array(n * CIFAR_PIXELS);
      const labels = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const label = bytes[i * record + labelIndex]!;
        if (label >= classes) {
          throw new DataError(
            `${path}: record ${read + i} has label ${label}, expected 0..${classes - 1}`,
          );
        }
        labels[i] = label;
        samples.set(bytes.subarray(i * record + labelBytes, (i + 1) * record), i * CIFAR_PIXELS);
      }
      read += n;
      return { samples, labels, rows: n };
    },
    close: () => reader.close(),
  };
}

interface Parsed {
  record: string[];
  info: { lines: number };
}

/**
 * The bytes of a file (gunzipped), checked to be UTF-8 on the way (the decoder fails on anything
 * else; the parser takes bytes again).
 */
function utf8Stream(reader: ByteReader): ReadableStream<Uint8Array> {
  const bytes = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await reader.read(1 << 16);
      if (chunk.length === 0) controller.close();
      else controller.enqueue(chunk);
    },
    cancel: () => reader.close(),
  });
  return bytes.pipeThrough(new TextDecoderStream("utf-8", { fatal: true }))
    .pipeThrough(new TextEncoderStream());
}

/**
 * The rows of a CSV file through a run's saved `transform`: the file's header must name every
 * fitted column (in any order; other columns are ignored) and may name the label column.
 */
export async function csvRows(
  path: string,
  transform: CsvTransform,
  options: { missing: MissingPolicy; delimiter: string },
): Promise<RowSource> {
  const reader = await ByteReader.open(path);
  const records = utf8Stream(reader).pipeThrough(
    parse({
      delimiter: options.delimiter,
      info: true,
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as ReadableWritablePair<Parsed, Uint8Array>,
  ).getReader();
  const nextRecord = async (): Promise<Parsed | undefined> => {
    try {
      const { value, done } = await records.read();
      return done ? undefined : value;
    } catch (e) {
      if (e instanceof DataError) throw e;
      if (e instanceof TypeError && /encoded data|decod|utf-?8/i.test(e.message)) {
        throw new DataError(`${path}: not UTF-8 text`);
      }
      const line = (e as { lines?: number }).lines;
      throw new DataError(`${path}: ${line ? `line ${line}: ` : ""}${(e as Error).message}`);
    }
  };
  try {
    const head = await nextRecord();
    if (!head) throw new DataError(`${path}: empty file`);
    const header = head.record.map((name, i) => name.trim() || `column ${i + 1}`);
    const table = (rows: string[][], lines: number[]): CsvTable => ({ path, header, rows, lines });
    const empty = table([], []);
    const index = transform.columns.map((c) =>
      columnIndex(empty, c.name, "a column the run's transform was fitted on")
    );
    const labelIndex = header.indexOf(transform.label);
    let read = 0;
    return {
      path,
      labelled: labelIndex >= 0,
      async next(rows) {
        const cells: string[][] = [];
        const lines: number[] = [];
        while (cells.length < rows) {
          const r = await nextRecord();
          if (!r) break;
          if (r.record.length !== header.length) {
            throw new DataError(
              `${path}: line ${r.info.lines}: ${r.record.length} cells, but the header (line 1) has ${header.length} columns`,
            );
          }
          cells.push(r.record);
          lines.push(r.info.lines);
        }
        if (cells.length === 0) {
          if (read === 0) throw new DataError(`${path}: no data rows after the header (line 1)`);
          return undefined;
        }
        const all = Uint32Array.from(cells, (_, i) => i);
        const { samples, labels } = applyTransform(
          transform,
          table(cells, lines),
          all,
          index,
          labelIndex,
          options.missing,
        );
        read += cells.length;
        return {
          samples,
          labels: labelIndex >= 0 ? labels : undefined,
          rows: cells.length,
        };
      },
      async close() {
        await records.cancel().catch(() => {});
        await reader.close();
      },
    };
  } catch (e) {
    await records.cancel().catch(() => {});
    await reader.close();
    throw e;
  }
}
