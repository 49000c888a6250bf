/**
 * Typed binding of `wgsl/position_encoding.wgsl`: an absolute position p (AUNN, algorithms.md
 * §6.2) as ±1 bits LSB first, or as sin/cos pairs of its phase at given frequencies (multi-scale
 * sinusoids or random Fourier features). p arrives as one or two f32 columns, base-2^24 words
 * least significant first, so positions up to 2^48 are exact; the phase is reduced with the
 * float64 table of {@link positionTable}, so high positions keep their precision in f32.
 *
 * @module
 */

import {
  type BufferRef,
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import { seededRandom } from "../util/random.ts";
import src from "../../wgsl/position_encoding.wgsl" with { type: "text" };

/** `wgsl/position_encoding.wgsl`. */
export const POSITION_ENCODING_KERNEL: KernelSource = wgsl("position_encoding", src);

/** The encodings: ±1 bits, multi-scale sinusoids, random Fourier features. */
export const POSITION_ENCODINGS = ["bits", "sin", "fourier"] as const;

/** One of {@link POSITION_ENCODINGS}. */
export type PositionEncodingKind = typeof POSITION_ENCODINGS[number];

/** The largest position the words carry: two base-2^24 words. */
export const MAX_POSITION = 2 ** 48 - 1;

/** Bits the kernel encodes at most (48: two 24-bit words). */
export const MAX_POSITION_BITS = 48;

/**
 * The frequencies, in turns per position, of the `features / 2` sin/cos pairs: "sin" takes
 * ω_k = base^(−2k/features) radians (the Transformer's), i.e. ω_k/2π turns; "fourier" draws
 * B_k ~ N(0, scale²) turns from a seeded generator (Box–Muller), as random Fourier features
 * cos/sin(2π·B·p).
 */
export function positionFrequencies(
  kind: "sin" | "fourier",
  features: number,
  options: { base?: number; scale?: number; seed?: number } = {},
): Float64Array {
  if (!Number.isInteger(features) || features < 2 || features % 2 !== 0) {
    throw new RangeError(
      `position_features must be an even integer ≥ 2 for "${kind}", got ${features}`,
    );
  }
  const pairs = features / 2;
  if (kind === "sin") {
    const base = options.base ?? 10000;
    return Float64Array.from(
      { length: pairs },
      (_, k) => base ** (-2 * k / features) / (2 * Math.PI),
    );
  }
  const scale = options.scale ?? 1;
  const random = seededRandom(options.seed ?? 0);
  return Float64Array.from({ length: pairs }, () => {
    const u = 1 - random();
    return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  });
}

/**
 * The kernel's table for frequencies f_k (turns per position): per pair k and 12-bit chunk m,
 * g = frac(2^{12m}·f_k) (exact in float64) split as hi = ⌊4096·g⌋/4096 and lo = g − hi, so
 * that the kernel's products of a chunk with hi are exact in f32.
 */
export function positionTable(frequencies: ArrayLike<number>): Float32Array {
  const table = new Float32Array(Math.max(1, frequencies.length) * 8);
  for (let k = 0; k < frequencies.length; k++) {
    const f = frequencies[k]!;
    if (!Number.isFinite(f)) throw new RangeError(`position frequency ${k} is ${f}`);
    for (let m = 0; m < 4; m++) {
      const scaled = f * 2 ** (12 * m);
      const g = scaled - Math.floor(scaled);
      const hi = Math.floor(g * 4096) / 4096;
      table[k * 8 + 2 * m] = hi;
      table[k * 8 + 2 * m + 1] = g - hi;
    }
  }
  return table;
}

/** What {@link positionEncoding} encodes. */
export interface PositionEncodingArgs {
  /** Rows of `stride` f32 values; a position's words are its first `words` columns. */
  x: BufferRef;
  /** rows × features, written. */
  out: BufferRef;
  /** {@link positionTable} of the frequencies (sin/fourier); any buffer of ≥ 4 floats for bits. */
  table: BufferRef;
  rows: number;
  stride: number;
  /** 1 (p < 2^24) or 2 (p = w0 + w1·2^24). */
  words: number;
  features: number;
  kind: PositionEncodingKind;
  label?: string;
}

/** out[r] = the encoding of row r's position (see the module doc). */
export async function positionEncoding(
  kernels: KernelCache,
  args: PositionEncodingArgs,
): Promise<Dispatch> {
  const label = args.label ?? "position_encoding";
  for (const key of ["rows", "stride", "features"] as const) {
    if (!Number.isInteger(args[key]) || args[key] < 1) {
      throw new RangeError(`${label}: ${key} must be an integer ≥ 1, got ${args[key]}`);
    }
  }
  if (args.words !== 1 && args.words !== 2 || args.words > args.stride) {
    throw new RangeError(
      `${label}: words must be 1 or 2 (and at most the ${args.stride} columns), got ${args.words}`,
    );
  }
  if (!POSITION_ENCODINGS.includes(args.kind)) {
    throw new RangeError(`${label}: kind must be one of ${POSITION_ENCODINGS}, got "${args.kind}"`);
  }
  const bits = args.kind === "bits";
  if (!bits && args.features % 2 !== 0) {
    throw new RangeError(
      `${label}: "${args.kind}" needs an even number of features, got ${args.features}`,
    );
  }
  const n = args.rows * args.features;
  checkBuffers(label, {
    x: [args.x, args.rows * args.stride],
    out: [args.out, n],
    table: [args.table, bits ? 4 : (args.features / 2) * 8],
  });
  return await kernels.dispatch({
    kernel: POSITION_ENCODING_KERNEL,
    entry: "position_encoding",
    bindings: [
      args.x,
      args.out,
      args.table,
      kernels.gpu.uniform(
        `${label} params`,
        packUniform([
          ["u32", args.rows],
          ["u32", args.stride],
          ["u32", args.words],
          ["u32", args.features],
          ["u32", bits ? 0 : 1],
        ]),
      ),
    ],
    workgroups: grid(n, 256),
    label,
  });
}
