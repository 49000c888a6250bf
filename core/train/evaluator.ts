/**
 * Evaluation of the weights as they are: every sample of a split exactly once, in order, through
 * the plan's evaluation pass (dropout off, no smoothing, mixup or augmentation), the last partial
 * batch masked; loss and correct counts summed on the GPU and read once. A streamed split is
 * evaluated chunk by chunk, each chunk written into its slot after the previous one's batches
 * were submitted.
 *
 * @module
 */

import { advanceCounters } from "../gpu/counters.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import type { Gpu } from "../gpu/device.ts";
import { gatherFor, type GpuSplit, rangeIndices } from "./data.ts";
import type { ModelPlan } from "./plan.ts";
import type { DatasetSplits } from "./registry.ts";
import { metricSums } from "./recipe.ts";
import { dispatchPhase, encodeSteps, type Phase, repeatPhase } from "./step.ts";

/** Mean loss and accuracy over a split. */
export interface Evaluation {
  loss: number;
  accuracy: number;
}

/** What to evaluate: rows `first .. first + count` of a split, through a plan of `batch` rows. */
export interface EvaluatorOptions {
  gpu: Gpu;
  kernels: KernelCache;
  plan: ModelPlan;
  batch: number;
  dataset: DatasetSplits;
  split: GpuSplit;
  name: string;
  first: number;
  count: number;
}

/** An evaluation of the split, made once and run any number of times; undefined when empty. */
export async function makeEvaluator(
  options: EvaluatorOptions,
): Promise<(() => Promise<Evaluation>) | undefined> {
  const { gpu, kernels, plan, batch, dataset, split, name, first, count } = options;
  if (count === 0) return undefined;
  const stream = split.stream;
  // A streamed split goes through in chunks of whole batches; a resident one is one chunk.
  const chunkRows = stream ? stream.chunkRows(batch, `evaluating ${name}`) : 0;
  const chunkSize = chunkRows > 0 ? chunkRows : count;
  const cursor = gpu.storage(`${name} cursor`, 16);
  const acc = gpu.storage(`${name} metrics Σ`, 16);
  const gather = await gatherFor(kernels, split, dataset, {
    indices: rangeIndices(gpu, `${name} indices`, first, count),
    indexCount: count,
    cursor,
    cursorIndex: 0,
    x: plan.x,
    y: plan.labels,
    batch,
    chunkRows,
    storage: plan.precision,
    label: `gather ${name} batch`,
  });
  const next = await advanceCounters(kernels, cursor, { 0: 1 }, `next ${name} batch`);
  const batchOf = async (rows: number) =>
    dispatchPhase(`${name} batch of ${rows}`, [
      gather,
      ...await plan.evalForward(rows),
      ...await metricSums(kernels, plan, acc, batch),
      next,
    ]);
  /** The phases of a chunk of `rows` rows: its full batches, then a masked partial one. */
  const chunkPhases = async (rows: number): Promise<Phase[]> => {
    const full = Math.floor(rows / batch);
    const tail = rows - full * batch;
    return [
      dispatchPhase("refresh f16 weights", plan.refreshWeights),
      repeatPhase(`${name} full batches`, full, [await batchOf(batch)]),
      ...(tail > 0 ? [await batchOf(tail)] : []),
    ];
  };
  const chunks = Math.ceil(count / chunkSize);
  const lastRows = count - (chunks - 1) * chunkSize;
  const fullChunk = chunks > 1 ? await chunkPhases(chunkSize) : [];
  const lastChunk = await chunkPhases(lastRows);
  return async () => {
    gpu.write(cursor, new Uint32Array(4));
    gpu.write(acc, new Float32Array(4));
    for (let k = 0; k < chunks; k++) {
      stream?.fill(name, k, chunkRows, count, undefined, first);
      const encoder = gpu.device.createCommandEncoder({ label: `evaluate ${name}` });
      encodeSteps(encoder, k === chunks - 1 ? lastChunk : fullChunk, 1, `evaluate ${name}`);
      gpu.submit([encoder.finish()]);
    }
    const [loss, correct] = await gpu.readF32(acc, 2);
    return { loss: loss! / count, accuracy: correct! / count };
  };
}
