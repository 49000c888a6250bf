/**
 * Typed binding of `wgsl/topk_mask.wgsl`: a global top-k over the flat parameter buffers written
 * as a 0/1 mask, by a 4-pass radix select on the GPU (no sort, no readback), exactly k ones with
 * ties broken by the lower index. SSAM's Fisher and dynamic masks are made of it.
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  wgsl,
} from "../gpu/kernels.ts";
import source from "../../wgsl/topk_mask.wgsl" with { type: "text" };

/** `wgsl/topk_mask.wgsl`. */
export const TOPK_MASK_KERNEL: KernelSource = wgsl("topk_mask", source);

/** Elements per chunk of the histogram, count and write passes (must match the WGSL). */
export const TOPK_CHUNK = 256 * 16;

/** What each element is ranked by. */
export type TopkScore = "value" | "abs" | "random";

/** Which elements may be chosen. */
export type TopkCandidates = "all" | "live" | "dead";

/** Arguments of {@link topkMask}. */
export interface TopkMaskArgs {
  /** Elements of the flat buffers. */
  n: number;
  /** The optimizer's segment table: elements in no segment are never chosen. */
  segments: GPUBuffer;
  /** Rows of `segments`. */
  segmentCount: number;
  /** The step counters: `[0]` (optimizer steps) picks the table entry and keys the random scores. */
  counters: GPUBuffer;
  /** Ranked by: `values[i]` ("value", ≥ 0), `|values[i]|` ("abs"), or a uniform ("random"). */
  score: TopkScore;
  /** The scores' buffer (n floats), for "value" and "abs". */
  values?: GPUBuffer;
  /** Candidates: every element in a segment, or those where `filter` is 1 ("live") or 0 ("dead"). */
  candidates: TopkCandidates;
  /** The 0/1 buffer (n floats) "live" and "dead" read; it must not be `out`. */
  filter?: GPUBuffer;
  /** The mask written (n floats): 1 for the chosen, 0 elsewhere. */
  out: GPUBuffer;
  /** out[i] = max(out[i], chosen) instead (a union with what `out` holds). */
  or?: boolean;
  /**
   * k per epoch: entry `min(counters[0] / stepsPerEpoch, length − 1)` is used; one entry for a
   * constant k. Each must be an integer ≥ 0 (more than the candidates takes them all).
   */
  counts: readonly number[];
  /** Steps per epoch, for the table lookup (default 1). */
  stepsPerEpoch?: number;
  /** The random scores' Philox key (seed, stream). */
  seed?: number;
  stream?: number;
  label?: string;
}

/** The dispatches of one top-k mask, to be encoded in order (12 of them). */
export async function topkMask(kernels: KernelCache, args: TopkMaskArgs): Promise<Dispatch[]> {
  const label = args.label ?? "topk mask";
  const gpu = kernels.gpu;
  const { n } = args;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${label}: n must be ≥ 1, got ${n}`);
  if (args.counts.length === 0 || args.counts.some((k) => !Number.isInteger(k) || k < 0)) {
    throw new RangeError(
      `${label}: counts must be one or more integers ≥ 0, got ${JSON.stringify(args.counts)}`,
    );
  }
  if (args.score !== "random" && !args.values) {
    throw new RangeError(`${label}: score "${args.score}" needs a values buffer`);
  }
  if (args.candidates !== "all" && !args.filter) {
    throw new RangeError(`${label}: candidates "${args.candidates}" needs a filter buffer`);
  }
  if (args.filter && args.filter === args.out) {
    throw new RangeError(`${label}: the filter cannot be the output (write into another buffer)`);
  }
  const chunks = Math.ceil(n / TOPK_CHUNK);
  const setup = gpu.uniform(
    `${label} setup`,
    packUniform([
      ["u32", n],
      ["u32", args.segmentCount],
      ["u32", chunks],
      ["u32", args.stepsPerEpoch ?? 1],
      ["u32", args.counts.length],
      ["u32", (args.seed ?? 0) >>> 0],
      ["u32", (args.stream ?? 0) >>> 0],
      ["u32", 0],
    ]),
  );
  // prefix, remaining, above, k, the 256-bin histogram, then the k table.
  const stateWords = new Uint32Array(4 + 256 + args.counts.length);
  stateWords.set(args.counts, 4 + 256);
  const state = gpu.storage(`${label} state`, stateWords);
  const ties = gpu.storage(`${label} ties per chunk`, chunks * 4);
  const placeholder = gpu.storage(`${label} unused`, 16);
  const constants = {
    VALUE: { value: 0, abs: 1, random: 2 }[args.score],
    CANDIDATES: { all: 0, live: 1, dead: 2 }[args.candidates],
    OR_OUT: args.or ?? false,
  };
  const keyed = [
    setup,
    state,
    args.counters,
    args.segments,
    args.values ?? placeholder,
    args.filter ?? placeholder,
  ];
  const wide = grid(chunks, 1);
  const make = (
    entry: string,
    bindings: GPUBuffer[],
    workgroups: number | [number, number, number],
    extra: Record<string, number | boolean> = {},
  ) =>
    kernels.dispatch({
      kernel: TOPK_MASK_KERNEL,
      entry,
      constants: { ...constants, ...extra },
      bindings,
      workgroups,
      label: `${label}.${entry}`,
    });
  const passes: Promise<Dispatch>[] = [];
  for (let pass = 0; pass < 4; pass++) {
    passes.push(make("select_histogram", keyed, wide, { RADIX_PASS: pass }));
    passes.push(make("select_pick", [setup, state], 1, { RADIX_PASS: pass }));
  }
  return await Promise.all([
    make("select_begin", [setup, state, args.counters], 1),
    ...passes,
    make("select_count_ties", [...keyed, ties], wide),
    make("select_scan_ties", [setup, ties], 1),
    make("select_write", [...keyed, ties, args.out], wide),
  ]);
}
