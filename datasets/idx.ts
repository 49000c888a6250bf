/**
 * IDX files (LeCun's format of MNIST, Fashion-MNIST, EMNIST, KMNIST…), plain or gzipped: an image
 * file and a label file per split, the image shape read from the header; and the `idx` dataset,
 * any such pair of splits from `--data DIR` (the usual `train-*` / `t10k-*` names) or from
 * `--train-images` … flags.
 *
 * @module
 */

import { basename, join } from "node:path";
import { DataError, listDir, readDataFile } from "../core/io/data_files.ts";
import { AUGMENT_DEFAULTS } from "../core/train/augment.ts";
import type { Config, DatasetPlugin, DatasetSplits } from "../core/train/registry.ts";
import { pixelStats } from "./pixels.ts";

/** IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803; // 2051
/** Magic number of a label file (unsigned bytes, one dimension). */
export const IDX_LABELS_MAGIC = 0x00000801; // 2049

/** The images of an IDX file: `count` rows of `channels × height × width` bytes. */
export interface IdxImages {
  images: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** One split read from an image file and a label file. */
export interface IdxSplit extends IdxImages {
  labels: Uint8Array;
}

/**
 * The dimensions in an IDX file's header (`bytes` may hold only the header): unsigned bytes,
 * 1 dimension for labels, 2 to 4 for images; fails naming the file.
 */
export function idxHeader(bytes: Uint8Array, file: string, labels: boolean): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const what = labels ? "label" : "image";
  if (bytes.length === 0) throw new DataError(`${file}: empty file`);
  if (bytes.length < 4) {
    throw new DataError(`${file}: truncated: ${bytes.length} bytes, the header needs at least 4`);
  }
  const magic = view.getUint32(0, false);
  const dims = magic & 0xFF;
  const ok = (magic >>> 8) === 0x08 && (labels ? dims === 1 : dims >= 2 && dims <= 4);
  if (!ok) {
    const expected = labels
      ? `${IDX_LABELS_MAGIC} (0x00000801: unsigned bytes, 1 dimension)`
      : `${IDX_IMAGES_MAGIC} (0x00000803: unsigned bytes, 3 dimensions) or another unsigned-byte IDX of 2 to 4 dimensions`;
    throw new DataError(
      `${file}: bad magic number ${magic} (0x${
        magic.toString(16).padStart(8, "0")
      }), expected ${expected} for an IDX ${what} file`,
    );
  }
  const need = 4 + 4 * dims;
  if (bytes.length < need) {
    throw new DataError(`${file}: truncated: ${bytes.length} bytes, the header needs ${need}`);
  }
  return Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i, false)); // big-endian
}

function body(bytes: Uint8Array, file: string, offset: number, size: number, what: string) {
  if (bytes.length - offset !== size) {
    const problem = bytes.length - offset < size ? "truncated" : "has trailing bytes";
    throw new DataError(
      `${file}: ${problem}: ${what} need ${size} bytes after the header, found ${
        bytes.length - offset
      }`,
    );
  }
  return bytes.subarray(offset, offset + size);
}

/** The images an IDX image header's dimensions describe (see {@link parseIdxImages}). */
export function idxShape(
  dims: number[],
): { count: number; channels: number; height: number; width: number } {
  const [count, ...shape] = dims as [number, ...number[]];
  const [channels, height, width] = shape.length === 3
    ? shape as [number, number, number]
    : shape.length === 2
    ? [1, shape[0]!, shape[1]!]
    : [1, 1, shape[0] ?? 1];
  return { count, channels, height, width };
}

/**
 * Parses an IDX image file: unsigned bytes, dimensions [count, height, width] (the usual idx3),
 * [count, channels, height, width] (channel-major) or [count, features].
 */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const dims = idxHeader(bytes, file, false);
  const { count, channels, height, width } = idxShape(dims);
  const shape = dims.slice(1);
  const per = channels * height * width;
  const what = shape.length >= 2
    ? `${count} images of ${channels > 1 ? `${channels}×` : ""}${height}×${width}`
    : `${count} rows of ${per}`;
  const images = body(bytes, file, 4 + 4 * dims.length, count * per, what);
  return { images, count, channels, height, width };
}

/** Parses an IDX label file (magic 2049, big-endian count, then one byte per label). */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const [count] = idxHeader(bytes, file, true) as [number];
  return body(bytes, file, 8, count, `${count} labels`);
}

/** Reads an image file and a label file (each plain or gzipped) whose counts must agree. */
export async function readIdxSplit(imagePath: string, labelPath: string): Promise<IdxSplit> {
  const images = parseIdxImages(await readDataFile(imagePath), imagePath);
  const labels = parseIdxLabels(await readDataFile(labelPath), labelPath);
  if (labels.length !== images.count) {
    throw new DataError(
      `${labelPath}: ${labels.length} labels but ${imagePath} has ${images.count} images`,
    );
  }
  return { ...images, labels };
}

/** The four files of an IDX dataset. */
export interface IdxFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

const ROLES = [
  ["trainImages", "train_images", /(^|[-_.])train[-_.]images/i, "train-images-…"],
  ["trainLabels", "train_labels", /(^|[-_.])train[-_.]labels/i, "train-labels-…"],
  [
    "testImages",
    "test_images",
    /(^|[-_.])(t10k|test)[-_.]images/i,
    "t10k-images-… or test-images-…",
  ],
  [
    "testLabels",
    "test_labels",
    /(^|[-_.])(t10k|test)[-_.]labels/i,
    "t10k-labels-… or test-labels-…",
  ],
] as const;

/**
 * The image file of one split in `dir`, named like the usual patterns (`t10k-images-…` or
 * `…test-images…` for "test"), and its label file when there is one; fails naming the directory
 * and the pattern when there is no such image file, or more than one.
 */
export function findIdxSplit(
  dir: string,
  split: "train" | "test",
): { images: string; labels?: string } {
  const names = listDir(dir, "--data");
  const pick = (role: (typeof ROLES)[number], required: boolean) => {
    const [, , pattern, like] = role;
    const matches = names.filter((n) => pattern.test(n));
    const unique = matches.filter((n) => !(n.endsWith(".gz") && matches.includes(n.slice(0, -3))));
    if (unique.length === 1) return join(dir, unique[0]!);
    if (unique.length === 0 && !required) return undefined;
    throw new DataError(
      `${dir}: ${
        unique.length === 0 ? "no file" : `${unique.length} files (${unique.join(", ")})`
      } named like ${like}; name the file instead of the directory`,
    );
  };
  const [images, labels] = split === "train" ? [ROLES[0], ROLES[1]] : [ROLES[2], ROLES[3]];
  return { images: pick(images, true)!, labels: pick(labels, false) };
}

/**
 * The four files: each flag that is set, else the one file of `dir` whose name fits the usual
 * pattern (`train-images-idx3-ubyte[.gz]`, `t10k-labels…`, `…-test-images…`); a plain and a
 * gzipped copy of one file count once (the plain one is read).
 */
export function findIdxFiles(dir: string, flags: Partial<Record<string, string>>): IdxFiles {
  const names = ROLES.some(([, key]) => !flags[key]) && dir ? listDir(dir, "--data") : [];
  const out: Partial<IdxFiles> = {};
  for (const [role, key, pattern, like] of ROLES) {
    const given = flags[key];
    if (given) {
      out[role] = given;
      continue;
    }
    const flag = `--${key.replaceAll("_", "-")}`;
    if (!dir) throw new DataError(`idx: no --data DIR and no ${flag} FILE`);
    const matches = names.filter((n) => pattern.test(n));
    const unique = matches.filter((n) => !(n.endsWith(".gz") && matches.includes(n.slice(0, -3))));
    if (unique.length !== 1) {
      throw new DataError(
        `${dir}: ${
          unique.length === 0 ? "no file" : `${unique.length} files (${unique.join(", ")})`
        } named like ${like}; name it with ${flag} FILE`,
      );
    }
    out[role] = join(dir, unique[0]!);
  }
  return out as IdxFiles;
}

/** Loads the splits of an IDX dataset as a plugin's result; labels above `maxLabel` fail. */
export async function loadIdxDataset(files: IdxFiles, maxLabel = 255): Promise<{
  train: IdxSplit;
  test: IdxSplit;
}> {
  const train = await readIdxSplit(files.trainImages, files.trainLabels);
  const test = await readIdxSplit(files.testImages, files.testLabels);
  const shape = (s: IdxSplit) => `${s.channels}×${s.height}×${s.width}`;
  if (shape(train) !== shape(test)) {
    throw new DataError(
      `${files.testImages}: images of ${shape(test)}, but ${basename(files.trainImages)} has ${
        shape(train)
      }`,
    );
  }
  for (const [split, path] of [[train, files.trainLabels], [test, files.testLabels]] as const) {
    const bad = split.labels.findIndex((l) => l > maxLabel);
    if (bad >= 0) {
      throw new DataError(
        `${path}: label ${bad} is ${split.labels[bad]}, expected ${
          maxLabel === 9 ? "a digit 0..9" : `0..${maxLabel}`
        }`,
      );
    }
  }
  return { train, test };
}

/** The plugin's result from two IDX splits: classes from the labels, pixel statistics fitted. */
export function idxSplits(train: IdxSplit, test: IdxSplit, classes?: number): DatasetSplits {
  let max = 0;
  for (const l of train.labels) max = Math.max(max, l);
  for (const l of test.labels) max = Math.max(max, l);
  const { mean, std } = pixelStats(train.images, train.channels, train.height * train.width);
  return {
    info: {
      features: train.channels * train.height * train.width,
      classes: classes ?? max + 1,
      image: { channels: train.channels, height: train.height, width: train.width },
    },
    train: { samples: train.images, labels: train.labels, count: train.count },
    test: { samples: test.images, labels: test.labels, count: test.count },
    mean,
    std,
  };
}

/** `idx`: any IDX image/label pair of splits, normalised with the training pixels' statistics. */
export const idxDataset: DatasetPlugin = {
  kind: "dataset",
  name: "idx",
  description:
    "IDX images + labels (Fashion-MNIST, EMNIST, …) from --data DIR (train-*/t10k-*, plain or .gz) or --train-images … flags",
  defaults: {
    data: "",
    train_images: "",
    train_labels: "",
    test_images: "",
    test_labels: "",
    classes: 0,
    ...AUGMENT_DEFAULTS,
  },
  paths: ["data", "train_images", "train_labels", "test_images", "test_labels"],
  async load(config: Config): Promise<DatasetSplits> {
    const flags = Object.fromEntries(ROLES.map(([, key]) => [key, String(config[key] ?? "")]));
    const files = findIdxFiles(String(config.data ?? ""), flags);
    const { train, test } = await loadIdxDataset(files);
    const classes = Number(config.classes ?? 0);
    return idxSplits(train, test, classes > 0 ? classes : undefined);
  },
};
