/**
 * The time of one training step of several built runs, measured interleaved in one process so
 * their ratio is not skewed by load that changes over time (SAM against its base optimizer, SSAM
 * against SAM): each measurement encodes `steps` steps into one submission and waits once; the
 * runs take turns, `repeats` times, and the median is kept. The steps are taken at positions
 * where no periodic phase is due (SSAM's mask updates), which {@link StepTimes.periodic} times
 * separately. Never used in tests.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { COUNTER_COUNT } from "../gpu/counters.ts";
import { buildRun, type BuiltRun } from "../train/build.ts";
import { buildStep, type TrainStep } from "../train/recipe.ts";
import { epochPermutation } from "../train/data.ts";
import { encodeSteps, type StepPosition } from "../train/step.ts";
import type { Config, Registry } from "../train/registry.ts";
import { seededRandom } from "../util/random.ts";
import { median } from "./timing.ts";

/** What {@link stepTimes} measured, by the name each config was given. */
export interface StepTimes {
  /** Seconds per step (median), at steps without periodic phases. */
  step: Record<string, number>;
  /** Seconds of the first step of an epoch (where periodic phases are due) minus a plain one. */
  periodic: Record<string, number>;
}

/** Seconds per training step of each config, interleaved (see the module doc). */
export async function stepTimes(options: {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  configs: Record<string, Config>;
  steps: number;
  repeats: number;
}): Promise<StepTimes> {
  const { gpu, kernels, registry, steps, repeats } = options;
  const runs: { name: string; run: BuiltRun; step: TrainStep }[] = [];
  try {
    for (const [name, config] of Object.entries(options.configs)) {
      const run = await buildRun({ gpu, kernels, registry, config });
      runs.push({ name, run, step: await buildStep(run) });
    }
    for (const { run, step } of runs) {
      gpu.write(run.plan.params, run.plan.layout.initialValues(seededRandom(run.settings.seed)));
      gpu.write(
        step.epochIndices,
        epochPermutation(run.data.fitCount, run.settings.seed, 0, seededRandom),
      );
    }
    const time = async (r: (typeof runs)[number], count: number, at: StepPosition) => {
      // From fresh counters each time: the data cursor and lr index stay in range.
      gpu.write(r.run.counters, new Uint32Array(COUNTER_COUNT));
      const start = performance.now();
      const encoder = gpu.device.createCommandEncoder({ label: `bench ${r.name}` });
      encodeSteps(encoder, r.step.phases, count, `bench ${r.name}`, at);
      gpu.submit([encoder.finish()]);
      await gpu.read(r.run.counters, 16);
      return (performance.now() - start) / 1000;
    };
    const plain = { epoch: 0, stepInEpoch: 1, step: 1 };
    const first = { epoch: 0, stepInEpoch: 0, step: 0 };
    const samples = new Map(runs.map((r) => [r.name, [] as number[]]));
    const firsts = new Map(runs.map((r) => [r.name, [] as number[]]));
    for (const r of runs) await time(r, steps, plain); // warm-up: pipelines, first use
    for (let k = 0; k < repeats; k++) {
      for (const r of runs) {
        samples.get(r.name)!.push((await time(r, steps, plain)) / steps);
        firsts.get(r.name)!.push(await time(r, 1, first));
      }
    }
    const step = Object.fromEntries(runs.map((r) => [r.name, median(samples.get(r.name)!)]));
    return {
      step,
      periodic: Object.fromEntries(
        runs.map((r) => [r.name, Math.max(0, median(firsts.get(r.name)!) - step[r.name]!)]),
      ),
    };
  } finally {
    for (const { run } of runs) run.dispose();
  }
}
