/**
 * `text`: a UTF-8 file as tokens — bytes (256 classes) or, with `--tokenize char`, characters
 * (the code points of the training text, plus an "unknown" class for characters only the test
 * text has) — one sample per token position p: the features are p itself (the absolute position
 * in its document) and the `text_context` tokens before it (−1 before the start), as raw numbers
 * (f32, not normalised), and the label is the token at p. A model that predicts tokens from
 * their index reads feature 0; a next-token model reads the context too.
 *
 * The position is one f32 feature, exact below 2^24; with `text_position_words 2` it is two,
 * p mod 2^24 and ⌊p / 2^24⌋ (exact up to 2^48), so `text_first_position` (where the document
 * starts in the corpus, default 0) may lie past 2^32. `info.positionWords` says which.
 *
 * Without `--test-data` the test split is the file's last `test_split` (10%), at its own
 * positions in the file; a `--test-data` file is a second document whose positions start at 0,
 * so training and testing on the same file measures memorisation.
 *
 * @module
 */

import { DataError, readDataFile } from "../core/io/data_files.ts";
import type { Config, DatasetPlugin, DatasetSplits } from "../core/train/registry.ts";

/** The format tag of a saved character vocabulary. */
export const TEXT_VOCABULARY_FORMAT = "webgpu-trainer/text-vocabulary/1";

/** Positions stay exact in f32 up to 2^24. */
const MAX_TOKENS = 2 ** 24;

/**
 * The offset of the first byte of the first sequence that is not valid UTF-8 (the longest prefix
 * a streaming decode accepts, found by bisection, less a sequence it left incomplete).
 */
function invalidUtf8Offset(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  // The longest prefix may end inside the bad sequence (a lead byte and its continuations).
  let start = lo;
  while (start > 0 && (bytes[start - 1]! & 0xC0) === 0x80) start--;
  return start > 0 && bytes[start - 1]! >= 0xC0 ? start - 1 : lo;
}

/** A file's characters (code points); fails naming the first byte that is not UTF-8. */
function characters(bytes: Uint8Array, path: string): string[] {
  try {
    return Array.from(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new DataError(
      `${path}: byte ${
        invalidUtf8Offset(bytes)
      } is not valid UTF-8 (--tokenize byte reads any bytes)`,
    );
  }
}

/** Where positions start and how many words hold one. */
interface Positions {
  /** The corpus position of the document's first token. */
  offset: number;
  /** 1: p as one feature; 2: p mod 2^24 and ⌊p / 2^24⌋. */
  words: number;
}

/**
 * One sample's features: the position `offset + p` in `words` features, then the `context`
 * tokens before p (−1 before the start), the nearest last. `tokens(i)` is the token at i < p.
 */
export function textRow(
  p: number,
  tokens: (i: number) => number,
  context: number,
  positions: Positions,
  into: Float32Array = new Float32Array(positions.words + context),
  at = 0,
): Float32Array {
  const q = positions.offset + p;
  if (positions.words === 1) into[at] = q;
  else {
    into[at] = q % 2 ** 24;
    into[at + 1] = Math.floor(q / 2 ** 24);
  }
  const w = positions.words;
  for (let k = 1; k <= context; k++) into[at + w + context - k] = p - k >= 0 ? tokens(p - k) : -1;
  return into;
}

/** One document's samples: positions `first .. first + count` of `tokens`. */
function samples(
  tokens: ArrayLike<number>,
  first: number,
  count: number,
  context: number,
  positions: Positions,
) {
  const d = positions.words + context;
  const x = new Float32Array(count * d);
  const y = new Uint32Array(count);
  const at = (i: number) => tokens[i]!;
  for (let i = 0; i < count; i++) {
    textRow(first + i, at, context, positions, x, i * d);
    y[i] = tokens[first + i]!;
  }
  return { samples: x, labels: y, count };
}

async function readText(path: string): Promise<Uint8Array> {
  const bytes = await readDataFile(path);
  if (bytes.length === 0) throw new DataError(`${path}: empty file`);
  return bytes;
}

/** The `text` dataset plugin. */
export const textDataset: DatasetPlugin = {
  kind: "dataset",
  name: "text",
  description:
    "a UTF-8 file as byte (or --tokenize char) tokens at their positions: --data FILE [--test-data FILE], text_context",
  defaults: {
    data: "",
    test_data: "",
    tokenize: "byte",
    text_context: 0,
    test_split: 0.1,
    text_position_words: 1,
    text_first_position: 0,
  },
  keys: {
    text_position_words: { type: "int", min: 1, max: 2 },
    text_first_position: { type: "int", min: 0, max: 2 ** 48 - 1 },
  },
  paths: ["data", "test_data"],
  async load(config: Config, fitted?: unknown): Promise<DatasetSplits> {
    const path = String(config.data ?? "");
    if (!path) throw new DataError("text: --data FILE is required");
    const tokenize = String(config.tokenize);
    if (tokenize !== "byte" && tokenize !== "char") {
      throw new RangeError(`tokenize must be "byte" or "char", got "${tokenize}"`);
    }
    const context = Number(config.text_context);
    if (!Number.isInteger(context) || context < 0 || context > 4096) {
      throw new RangeError(
        `text_context must be an integer in [0, 4096], got ${config.text_context}`,
      );
    }
    const testPath = String(config.test_data ?? "");
    const bytes = await readText(path);
    const testBytes = testPath ? await readText(testPath) : undefined;
    // Characters as strings, or bytes as numbers; the vocabulary maps the first to ids.
    const units: (string | number)[] = tokenize === "char"
      ? characters(bytes, path)
      : Array.from(bytes);
    const testUnits = testBytes
      ? tokenize === "char" ? characters(testBytes, testPath) : Array.from(testBytes)
      : undefined;
    const split = Number(config.test_split);
    if (!testUnits && !(split > 0 && split < 1)) {
      throw new RangeError(
        `test_split must be in (0, 1) without --test-data, got ${config.test_split}`,
      );
    }
    const testCount = testUnits ? 0 : Math.max(1, Math.round(units.length * split));
    const trainCount = units.length - testCount;
    if (trainCount < 1) {
      throw new DataError(`${path}: ${units.length} tokens leave none to train on`);
    }
    const positions: Positions = {
      offset: Number(config.text_first_position ?? 0),
      words: Number(config.text_position_words ?? 1),
    };
    const longest = Math.max(units.length, testUnits?.length ?? 0);
    if (longest > MAX_TOKENS) {
      throw new DataError(`${path}: over ${MAX_TOKENS} tokens`);
    }
    if (positions.offset + longest > (positions.words === 1 ? MAX_TOKENS : 2 ** 48)) {
      throw new DataError(
        `${path}: positions from text_first_position ${positions.offset} to ${
          positions.offset + longest
        } are not exact in ${
          positions.words === 1
            ? "one f32 feature (below 2^24): add --text-position-words 2"
            : "two f32 words (below 2^48)"
        }`,
      );
    }
    let classes = 256;
    let ids = (u: (string | number)[]) => Uint32Array.from(u as number[]);
    let saved: unknown = undefined;
    if (tokenize === "char") {
      const f = fitted as { format?: string; vocabulary?: string[] } | undefined;
      if (
        f !== undefined && (f.format !== TEXT_VOCABULARY_FORMAT || !Array.isArray(f.vocabulary))
      ) {
        throw new DataError(
          `the run's saved vocabulary is not in the format "${TEXT_VOCABULARY_FORMAT}"`,
        );
      }
      // The vocabulary of the training text only; other characters are the unknown class.
      const vocabulary = f?.vocabulary ??
        [...new Set(units.slice(0, trainCount) as string[])].sort((a, b) =>
          a.codePointAt(0)! - b.codePointAt(0)!
        );
      const index = new Map(vocabulary.map((c, i) => [c, i]));
      classes = vocabulary.length + 1;
      ids = (u) => Uint32Array.from(u as string[], (c) => index.get(c) ?? vocabulary.length);
      saved = { format: TEXT_VOCABULARY_FORMAT, vocabulary };
    }
    const tokens = ids(units);
    const train = samples(tokens, 0, trainCount, context, positions);
    const test = testUnits
      ? samples(ids(testUnits), 0, testUnits.length, context, positions)
      : samples(tokens, trainCount, testCount, context, positions);
    return {
      info: {
        features: positions.words + context,
        classes,
        positionWords: positions.words,
        tokens: true,
      },
      train,
      test,
      mean: [0],
      std: [1],
      fitted: saved,
    };
  },
};
