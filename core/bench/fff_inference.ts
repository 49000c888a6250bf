/**
 * Inference throughput of a Fast Feedforward layer's hard path (`wgsl/fff.wgsl` fff_hard: per row
 * D node dot products, then one leaf) against the dense layer of the same training width
 * in → 2^D·W → out (ReLU, two fused matmuls), on the same batch and adapter, at several depths
 * (`deno task bench --model fff`). Never used in tests.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encode, type KernelCache } from "../gpu/kernels.ts";
import { fffHard, fffSizes } from "../ops/fff.ts";
import { matmul } from "../ops/matmul.ts";
import { tileFor } from "../ops/tuning.ts";
import { seededRandom } from "../util/random.ts";
import { median, timeGpu } from "./timing.ts";

/** What {@link fffInference} measures. */
export interface FffInferenceOptions {
  inputs: number;
  outputs: number;
  leafWidth: number;
  depths: readonly number[];
  /** Rows per dispatch. */
  batch: number;
  repeats: number;
  /** Seconds of work each measurement aims at (the count of batches adapts to it). */
  targetSeconds?: number;
}

/** One depth's numbers. */
export interface FffInferenceRow {
  depth: number;
  leaves: number;
  /** 2^D · leaf width: the dense layer's hidden width, and the FFF's in training. */
  training_width: number;
  fff_samples_per_sec: number;
  dense_samples_per_sec: number;
  /** fff / dense. */
  speedup: number;
  /** Multiply-adds per sample: hard path D·in + W·(in + out); dense width·(in + out). */
  fff_fma_per_sample: number;
  dense_fma_per_sample: number;
}

/**
 * Samples per second of each dispatch list over `batch` rows: each runs `count` batches per
 * submission (sized to ~targetSeconds), the lists interleaved repeat by repeat so that a shared
 * machine's changing load falls on all of them alike; median of the repeats.
 */
async function rates(
  gpu: Gpu,
  lists: Dispatch[][],
  wait: GPUBuffer,
  batch: number,
  options: FffInferenceOptions,
): Promise<number[]> {
  const run = (dispatches: Dispatch[], count: number) =>
    timeGpu(
      gpu,
      (encoder) => {
        const pass = encoder.beginComputePass({ label: "bench fff inference" });
        for (let i = 0; i < count; i++) encode(pass, dispatches);
        pass.end();
      },
      wait,
      1,
    );
  const counts: number[] = [];
  for (const list of lists) {
    const once = await run(list, 1);
    counts.push(Math.max(1, Math.min(10_000, Math.round((options.targetSeconds ?? 0.5) / once))));
  }
  const times: number[][] = lists.map(() => []);
  for (let r = 0; r < options.repeats; r++) {
    for (const [i, list] of lists.entries()) times[i]!.push(await run(list, counts[i]!));
  }
  return times.map((t, i) => counts[i]! * batch / median(t));
}

/** The hard path against the dense layer at each depth. */
export async function fffInference(
  gpu: Gpu,
  kernels: KernelCache,
  options: FffInferenceOptions,
): Promise<FffInferenceRow[]> {
  const { inputs, outputs, leafWidth: width, batch } = options;
  const random = seededRandom(7);
  const uniform = (n: number, bound: number) =>
    Float32Array.from({ length: n }, () => (2 * random() - 1) * bound);
  const rows: FffInferenceRow[] = [];
  for (const depth of options.depths) {
    const { nodes, leaves } = fffSizes(depth);
    const wide = leaves * width;
    const own: GPUBuffer[] = [];
    const buffer = (label: string, values: Float32Array | number) => {
      const b = gpu.storage(label, typeof values === "number" ? values * 4 : values);
      own.push(b);
      return b;
    };
    const inBound = 1 / Math.sqrt(inputs);
    const x = buffer("bench x", uniform(batch * inputs, 1));
    const w1 = buffer("bench w1", uniform(wide * inputs, inBound));
    const b1 = buffer("bench b1", uniform(wide, inBound));
    const w2 = buffer("bench w2", uniform(outputs * wide, 1 / Math.sqrt(width)));
    const b2 = buffer("bench b2 (fff)", uniform(leaves * outputs, 1 / Math.sqrt(width)));
    const denseB2 = buffer("bench b2 (dense)", uniform(outputs, 1 / Math.sqrt(wide)));
    const nodeW = buffer("bench node w", uniform(nodes * inputs, inBound));
    const nodeB = buffer("bench node b", uniform(nodes, inBound));
    const y = buffer("bench y", batch * outputs);
    const hidden = buffer("bench hidden", batch * wide);
    const hard = await fffHard(kernels, {
      rows: batch,
      depth,
      width,
      inputs,
      outputs,
      x,
      y,
      nodeW,
      nodeB,
      w1,
      b1,
      w2,
      b2,
    });
    const dense = [
      await matmul(kernels, {
        a: x,
        b: w1,
        c: hidden,
        m: batch,
        n: wide,
        k: inputs,
        layout: "nt",
        tile: tileFor(gpu, "nt", batch, wide, inputs),
        bias: b1,
        activation: "relu",
        label: "bench dense hidden",
      }),
      await matmul(kernels, {
        a: hidden,
        b: w2,
        c: y,
        m: batch,
        n: outputs,
        k: wide,
        layout: "nt",
        tile: tileFor(gpu, "nt", batch, outputs, wide),
        bias: denseB2,
        label: "bench dense output",
      }),
    ];
    const [fffRate, denseRate] = await rates(gpu, [[hard], dense], y, batch, options) as [
      number,
      number,
    ];
    for (const b of own) b.destroy();
    rows.push({
      depth,
      leaves,
      training_width: wide,
      fff_samples_per_sec: fffRate,
      dense_samples_per_sec: denseRate,
      speedup: fffRate / denseRate,
      fff_fma_per_sample: depth * inputs + width * (inputs + outputs),
      dense_fma_per_sample: wide * (inputs + outputs),
    });
  }
  return rows;
}
