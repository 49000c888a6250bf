/**
 * CIFAR-10 and CIFAR-100, binary version (https://www.cs.toronto.edu/~kriz/cifar.html): records
 * of a label byte (CIFAR-100: coarse then fine) and 3072 pixel bytes, 3×32×32 channel-major
 * (the red plane, then green, then blue), which is the layout the gather reads. CIFAR-10's
 * training set is `data_batch_1.bin` … `data_batch_5.bin` and its test set `test_batch.bin`;
 * CIFAR-100's are `train.bin` and `test.bin`. Each may be gzipped; `--data` may also name the
 * folder above the tarball's `cifar-10-batches-bin` / `cifar-100-binary`.
 *
 * @module
 */

import { join } from "node:path";
import { DataError, existing, listDir, readDataFile } from "../core/io/data_files.ts";
import { AUGMENT_DEFAULTS } from "../core/train/augment.ts";
import type { Config, DatasetPlugin, DatasetSplits } from "../core/train/registry.ts";
import { pixelStats } from "./pixels.ts";

/** Pixels per image: 3 channels of 32×32. */
export const CIFAR_PIXELS = 3 * 32 * 32;

/** The two variants. */
export type CifarVariant = "cifar10" | "cifar100";

/** Images and labels of one split. */
export interface CifarSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/**
 * Parses CIFAR records: `labelBytes` label bytes (1, or 2 for CIFAR-100), then 3072 pixels;
 * `labelIndex` picks the label byte (CIFAR-100: 0 coarse, 1 fine). Fails naming the file when its
 * size is not a whole number of records or a label is out of range.
 */
export function parseCifar(
  bytes: Uint8Array,
  file: string,
  labelBytes: number,
  labelIndex: number,
  classes: number,
): CifarSplit {
  const record = labelBytes + CIFAR_PIXELS;
  if (bytes.length === 0) throw new DataError(`${file}: empty file`);
  if (bytes.length % record !== 0) {
    throw new DataError(
      `${file}: ${bytes.length} bytes is not a whole number of ${record}-byte records (${
        Math.floor(bytes.length / record)
      } records and ${bytes.length % record} bytes over)`,
    );
  }
  const count = bytes.length / record;
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * record;
    const label = bytes[at + labelIndex]!;
    if (label >= classes) {
      throw new DataError(
        `${file}: record ${i} (byte ${at + labelIndex}) has label ${label}, expected 0..${
          classes - 1
        }`,
      );
    }
    labels[i] = label;
    images.set(bytes.subarray(at + labelBytes, at + record), i * CIFAR_PIXELS);
  }
  return { images, labels, count };
}

function concat(parts: CifarSplit[]): CifarSplit {
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * CIFAR_PIXELS);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count };
}

/** The folder holding the files: `dir`, or the tarball's folder inside it. */
function dataDir(dir: string, variant: CifarVariant, probe: string): string {
  if (!dir) throw new DataError(`${variant}: --data DIR is required (the binary version's folder)`);
  if (existing(dir, probe)) return dir;
  const inner = join(dir, variant === "cifar10" ? "cifar-10-batches-bin" : "cifar-100-binary");
  return existing(inner, probe) ? inner : dir;
}

/** The training and test files of a variant in `dir`. */
export function cifarFiles(dir: string, variant: CifarVariant): { train: string[]; test: string } {
  const need = (d: string, name: string) => {
    const path = existing(d, name);
    if (!path) throw new DataError(`${join(d, name)}: not found (nor ${name}.gz)`);
    return path;
  };
  if (variant === "cifar100") {
    const d = dataDir(dir, variant, "train.bin");
    return { train: [need(d, "train.bin")], test: need(d, "test.bin") };
  }
  const d = dataDir(dir, variant, "data_batch_1.bin");
  const batches = listDir(d, "--data")
    .map((n) => /^data_batch_(\d+)\.bin(\.gz)?$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .filter((n, i, all) => all.indexOf(n) === i)
    .sort((a, b) => a - b);
  if (batches.length === 0) need(d, "data_batch_1.bin");
  return {
    train: batches.map((n) => need(d, `data_batch_${n}.bin`)),
    test: need(d, "test_batch.bin"),
  };
}

/** Loads a variant's splits from `dir`; CIFAR-100 with `fine` or coarse labels. */
export async function loadCifar(
  dir: string,
  variant: CifarVariant,
  fine = true,
): Promise<{ train: CifarSplit; test: CifarSplit; classes: number }> {
  const files = cifarFiles(dir, variant);
  const [labelBytes, labelIndex, classes] = variant === "cifar10"
    ? [1, 0, 10]
    : fine
    ? [2, 1, 100]
    : [2, 0, 20];
  const read = async (path: string) =>
    parseCifar(await readDataFile(path), path, labelBytes, labelIndex, classes);
  const train = concat(await Promise.all(files.train.map(read)));
  const test = await read(files.test);
  return { train, test, classes };
}

function plugin(variant: CifarVariant, description: string, extra: Config): DatasetPlugin {
  return {
    kind: "dataset",
    name: variant,
    description,
    defaults: { data: "", ...extra, ...AUGMENT_DEFAULTS },
    paths: ["data"],
    async load(config: Config): Promise<DatasetSplits> {
      const labels = String(config.cifar_labels ?? "fine");
      if (variant === "cifar100" && labels !== "fine" && labels !== "coarse") {
        throw new RangeError(`cifar_labels must be "fine" or "coarse", got "${labels}"`);
      }
      const { train, test, classes } = await loadCifar(
        String(config.data ?? ""),
        variant,
        labels === "fine",
      );
      // Per-channel statistics of the training pixels (CIFAR-10: 0.4914, 0.4822, 0.4465 and
      // 0.2470, 0.2435, 0.2616).
      const { mean, std } = pixelStats(train.images, 3, 32 * 32);
      return {
        info: {
          features: CIFAR_PIXELS,
          classes,
          image: { channels: 3, height: 32, width: 32 },
        },
        train: { samples: train.images, labels: train.labels, count: train.count },
        test: { samples: test.images, labels: test.labels, count: test.count },
        mean,
        std,
      };
    },
  };
}

/** `cifar10`: 50 000 + 10 000 32×32 colour images in 10 classes. */
export const cifar10Dataset: DatasetPlugin = plugin(
  "cifar10",
  "CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin) from --data DIR",
  {},
);

/** `cifar100`: 50 000 + 10 000 images in 100 fine (or 20 coarse) classes. */
export const cifar100Dataset: DatasetPlugin = plugin(
  "cifar100",
  "CIFAR-100 binary version (train.bin, test.bin) from --data DIR; cifar_labels fine|coarse",
  { cifar_labels: "fine" },
);
