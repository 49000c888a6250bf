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
import type { PluginModule } from "./plugins.ts";
import { loadRunDataset, resolveDataPaths, saveRunDataset } from "./run_dataset.ts";

/** The metrics a search may optimize. */
export const METRICS = ["val_accuracy", "val_loss", "test_accuracy", "test_loss"] as const;
/** One of {@link METRICS}. */
export type Metric = typeof METRICS[number];

/** What a trial needs. */
export interface TrialOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The plugin modules the search loaded (recorded in each trial's config.json). */
  plugins?: readonly PluginModule[];
  /** The search's fixed settings (defaults, files, flags). */
  layers: ConfigLayer[];
  valSplit: number;
  study: Study;
  studyName: string;
  trial: Trial;
  metric: Metric;
  outDir: string;
  /** The journal (recorded in the trial's config.json, so another study's folders are known). */
  journal?: string;
  /** Aborted by SIGINT/SIGTERM: the trial stops after its current steps and is marked FAIL. */
  signal?: AbortSignal;
  /** How often a heartbeat is written while the trial trains (default 60 s). */
  heartbeatMs?: number;
}

/** How a trial ended, as the search reports it. */
export interface TrialOutcome {
  state: "complete" | "pruned" | "fail";
  /** One line: `COMPLETE val_accuracy=0.9`, `PRUNED`, `FAIL (reason)`. */
  line: string;
  /** The reason of a FAIL. */
  reason?: string;
}

/**
 * Trains the trial and tells the study how it ended. A config the sampler made invalid (a key the
 * chosen plugin does not own, a value out of range, a plugin that does not exist) and a diverged
 * run are a FAIL with the reason recorded (user attr `fail_reason`), and the study goes on; an
 * interrupted trial (SIGINT/SIGTERM) is a FAIL too, its checkpoint kept, as Optuna does on
 * KeyboardInterrupt. A heartbeat is written every minute while it trains.
 */
export async function runTrial(o: TrialOptions): Promise<TrialOutcome> {
  const { trial, study, metric } = o;
  const params = trial.params as Config;
  const fail = async (reason: string): Promise<TrialOutcome> => {
    await trial.setUserAttr("fail_reason", reason);
    await study.tell(trial, { state: "fail" });
    return { state: "fail", line: `FAIL (${reason})`, reason };
  };
  let config: Config;
  try {
    config = resolveConfig(o.registry, [
      ...o.layers,
      { source: "search", values: { val_split: o.valSplit } },
      { source: `trial ${trial.number}`, values: params },
    ]);
  } catch (e) {
    return await fail((e as Error).message.split("\n")[0]!);
  }
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  o.signal?.addEventListener("abort", onAbort);
  let files: RunFiles | undefined;
  let pruned = false;
  trial.startHeartbeat(o.heartbeatMs ?? 60_000);
  try {
    resolveDataPaths(o.registry, config);
    const dataset = await loadRunDataset(o.registry, config);
    const result = await train({
      gpu: o.gpu,
      kernels: o.kernels,
      registry: o.registry,
      config,
      dataset,
      outDir: o.outDir,
      signal: controller.signal,
      async ready() {
        files = await RunFiles.open(o.outDir, config, {
          study: o.studyName,
          journal: o.journal ?? null,
          trial: trial.number,
          params,
          plugins: o.plugins ?? [],
          adapter: o.gpu.report.description,
          fallback_adapter: o.gpu.report.fallback,
        });
        await saveRunDataset(o.outDir, config, dataset);
      },
      events: {
        window: (w) => files?.window(w),
        async epoch(e) {
          await files?.epoch(e);
          const value = e[metric];
          if (value === null || value === undefined) return;
          await trial.report(value, e.epoch);
          if (e.epoch < Number(config.epochs) && await trial.shouldPrune()) {
            pruned = true;
            controller.abort();
          }
        },
      },
    });
    if (o.signal?.aborted) return await fail(`interrupted; its checkpoint is kept in ${o.outDir}`);
    const value = result[metric];
    if (pruned) {
      await study.tell(trial, { state: "pruned" });
      return { state: "pruned", line: "PRUNED" };
    }
    if (value === null || !Number.isFinite(value)) return await fail(`${metric} is ${value}`);
    await study.tell(trial, { state: "complete", value });
    return { state: "complete", line: `COMPLETE ${metric}=${value.toFixed(4)}` };
  } catch (e) {
    if (e instanceof DivergenceError || e instanceof RangeError) {
      return await fail((e as Error).message.split(";")[0]!.split("\n")[0]!);
    }
    await fail((e as Error).message.split("\n")[0]!);
    throw e;
  } finally {
    trial.stopHeartbeat();
    o.signal?.removeEventListener("abort", onAbort);
    await files?.close();
  }
}

/**
 * Fails when `runs/<study>/` holds trial folders that another journal's study wrote (a new
 * journal reusing a study name would overwrite them), unless `overwrite`.
 */
export async function checkTrialFolders(root: string, journal: string, overwrite: boolean) {
  if (overwrite) return;
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory || !e.name.startsWith("trial-")) continue;
      let record: { journal?: string | null };
      try {
        record = JSON.parse(await Deno.readTextFile(`${root}/${e.name}/config.json`));
      } catch {
        continue;
      }
      if (record.journal && record.journal !== journal) {
        throw new Error(
          `${root} holds the trials of another journal (${record.journal}); this search writes ${journal}. Use another --study name, move ${root}, or add --overwrite`,
        );
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
