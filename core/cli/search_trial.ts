/**
 * One trial of a search: a normal training run in its own folder whose config is the search's
 * fixed layers plus the trial's parameters, its metric reported every epoch to the pruner, and
 * its end told to the study (COMPLETE, PRUNED, or FAIL for a diverged run or a missing metric).
 * Every trial runs in the same process: the run frees what it allocated, so trial 20 starts where
 * trial 1 did.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import type { Study, Trial } from "../search/mod.ts";
import { resolveConfig } from "../train/config.ts";
import type { Config, Registry } from "../train/registry.ts";
import { DivergenceError, train } from "../train/trainer.ts";
import type { ConfigLayer } from "./args.ts";
import { RunFiles } from "./run_files.ts";
import { loadRunDataset, saveRunDataset } from "./run_dataset.ts";

/** The metrics a search may optimize. */
export const METRICS = ["val_accuracy", "val_loss", "test_accuracy", "test_loss"] as const;
/** One of {@link METRICS}. */
export type Metric = typeof METRICS[number];

/** What a trial needs. */
export interface TrialOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The search's fixed settings (defaults, files, flags). */
  layers: ConfigLayer[];
  valSplit: number;
  study: Study;
  studyName: string;
  trial: Trial;
  metric: Metric;
  outDir: string;
}

/** Trains the trial and tells the study how it ended; returns that as one line. */
export async function runTrial(o: TrialOptions): Promise<string> {
  const { trial, study, metric } = o;
  const params = trial.params as Config;
  const config = resolveConfig(o.registry, [
    ...o.layers,
    { source: "search", values: { val_split: o.valSplit } },
    { source: `trial ${trial.number}`, values: params },
  ]);
  const controller = new AbortController();
  const files = await RunFiles.open(o.outDir, config, {
    study: o.studyName,
    trial: trial.number,
    params,
    adapter: o.gpu.report.description,
    fallback_adapter: o.gpu.report.fallback,
  });
  let pruned = false;
  try {
    const dataset = await loadRunDataset(o.registry, config);
    await saveRunDataset(o.outDir, config, dataset);
    const result = await train({
      gpu: o.gpu,
      kernels: o.kernels,
      registry: o.registry,
      config,
      dataset,
      outDir: o.outDir,
      signal: controller.signal,
      events: files.events({
        async epoch(e) {
          const value = e[metric];
          if (value === null || value === undefined) return;
          await trial.report(value, e.epoch);
          if (e.epoch < Number(config.epochs) && await trial.shouldPrune()) {
            pruned = true;
            controller.abort();
          }
        },
      }),
    });
    const value = result[metric];
    if (pruned) {
      await study.tell(trial, { state: "pruned" });
      return "PRUNED";
    }
    if (value === null || !Number.isFinite(value)) {
      await study.tell(trial, { state: "fail" });
      return `FAIL (${metric} is ${value})`;
    }
    await study.tell(trial, { state: "complete", value });
    return `COMPLETE ${metric}=${value.toFixed(4)}`;
  } catch (e) {
    await study.tell(trial, { state: "fail" });
    if (!(e instanceof DivergenceError)) throw e;
    return `FAIL (${e.message.split(";")[0]})`;
  } finally {
    await files.close();
  }
}
