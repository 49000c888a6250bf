/**
 * `deno task search`: hyperparameter search with an Optuna-compatible journal. Each trial is a
 * normal training run (in `runs/<study>/trial-<n>/`) whose config is the fixed flags plus the
 * trial's parameters; its validation metric is reported every epoch as the intermediate value,
 * and the pruner may stop it. Re-running the same command continues the study to `--trials`;
 * `--workers K` runs K processes on the same journal.
 *
 * @module
 */

import { join } from "@std/path";
import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { openTrainingGpu } from "./open_gpu.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import type { Config } from "../train/registry.ts";
import { parseFlags, readJson, runLayers, studyFolderName, userPath } from "./args.ts";
import { loadPlugins } from "./plugins.ts";
import { checkTrialFolders, type Metric, METRICS, runTrial } from "./search_trial.ts";
import {
  MedianPruner,
  openJournalStorage,
  type ParamSpec,
  parseSearchSpace,
  type SearchSpace,
  Study,
  TrialState,
} from "../search/mod.ts";

/** Flags of the search itself (everything else is a fixed train setting). */
const SEARCH_FLAGS = new Set([
  "space",
  "study",
  "journal",
  "journal_prefix",
  "trials",
  "sampler",
  "startup_trials",
  "sampler_seed",
  "pruner",
  "pruner_startup_trials",
  "pruner_warmup_steps",
  "metric",
  "direction",
  "workers",
  "worker_index",
  "max_failures",
  "overwrite",
  "plugin",
  "config",
]);

const HELP =
  `Usage: deno task search --space space.json --study NAME --journal PATH --trials N [flags]

  --space FILE             JSON search space over train config keys, e.g.
                           {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true},
                            "width": {"type": "int", "low": 64, "high": 512, "step": 64},
                            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}}
  --study NAME             the study (created with --direction if absent)
  --journal PATH|redis://host:port/db   Optuna JournalStorage file, or Optuna's Redis journal
  --journal-prefix NAME    key prefix in Redis
  --trials N               continue until the study has N trials (failed ones not counted)
  --sampler NAME           tpe (default), random, grid or a plugin's; --startup-trials K random trials first (default 10)
  --sampler-seed S         seed of the sampler (default: random)
  --pruner median|none     default median; --pruner-startup-trials (5), --pruner-warmup-steps (0)
  --metric M               val_accuracy (default), val_loss, test_accuracy or test_loss
  --direction D            maximize (default) or minimize
  --workers K              K processes on the same journal
  --max-failures N         stop after N failed trials in a row (default 10)
  --overwrite              reuse runs/<study>/ although its trials came from another journal
  --plugin PATH            plugins (models, optimizers, samplers, ...), as for train (repeatable)
  --config FILE            fixed settings as a JSON object of config keys
  --json                   one JSON summary as the last line: best_value, best_params, trials
Any other flag is a train setting fixed for every trial (e.g. --epochs 1 --train-samples 5000).
Trials always train with a validation split (default val_split 0.1: seeded, stratified).`;

/** Runs the search command; returns the process exit code. */
export async function searchCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, new Set(["json", "help", "overwrite"]));
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  const one = (key: string) => parsed.values.get(key)?.at(-1);
  const need = (key: string) => {
    const v = one(key);
    if (v === undefined) {
      throw new RangeError(`search needs --${key.replaceAll("_", "-")} (see --help)`);
    }
    return v;
  };
  const int = (key: string, fallback: number, min = 0) => {
    const raw = one(key);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(
        `--${key.replaceAll("_", "-")} must be an integer ≥ ${min}, got "${raw}"`,
      );
    }
    return v;
  };
  const spacePath = userPath(need("space"));
  const studyName = need("study");
  const journalArg = need("journal");
  const journal = journalArg.startsWith("redis://") ? journalArg : userPath(journalArg);
  const trials = int("trials", 0, 1);
  const workers = int("workers", 1, 1);
  const workerIndex = int("worker_index", 0);
  const metric = (one("metric") ?? "val_accuracy") as Metric;
  if (!METRICS.includes(metric)) {
    throw new RangeError(`--metric must be one of ${METRICS.join(", ")}, got "${metric}"`);
  }
  const direction = one("direction") ?? "maximize";
  if (direction !== "maximize" && direction !== "minimize") {
    throw new RangeError(`--direction must be maximize or minimize, got "${direction}"`);
  }
  const json = parsed.booleans.has("json");
  const log = (line: string) => (json ? console.error : console.log)(line);

  // --workers K: this process is worker 0; K − 1 more run the same command.
  const children = [];
  if (workers > 1 && workerIndex === 0) {
    const rest = argv.filter((a, i) =>
      !(a === "--workers" || argv[i - 1] === "--workers" || a.startsWith("--workers=") ||
        a === "--json")
    );
    for (let w = 1; w < workers; w++) {
      children.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            new URL("../../main.ts", import.meta.url).pathname,
            "search",
            ...rest,
            "--worker-index",
            String(w),
          ],
          stdout: "inherit",
          stderr: "inherit",
        }).spawn(),
      );
    }
  }

  const registry = builtinRegistry();
  const opened = await openTrainingGpu("the search", (line) => console.error(line));
  if (!(opened instanceof Gpu)) return opened.exitCode;
  const gpu = opened;
  const kernels = new KernelCache(gpu);
  const pluginModules = await loadPlugins(parsed.values.get("plugin") ?? [], registry, kernels);
  let spaceJson: unknown;
  try {
    spaceJson = JSON.parse(await Deno.readTextFile(spacePath));
  } catch (e) {
    throw new Error(`--space ${spacePath}: ${(e as Error).message}`);
  }
  let space: SearchSpace;
  try {
    space = parseSearchSpace(spaceJson);
  } catch (e) {
    throw new Error(`--space ${spacePath}: ${(e as Error).message}`);
  }

  const fileLayers = one("config")
    ? [{
      source: `--config ${one("config")}`,
      values: await readJson(userPath(one("config")!), "--config"),
    }]
    : [];
  const raw: Config = {};
  for (const [key, values] of parsed.values) if (!SEARCH_FLAGS.has(key)) raw[key] = values.at(-1);
  const run = runLayers(gpu.report.fallback, fileLayers, raw);
  const fixed = resolveConfig(registry, run.layers);
  const valSplit = Number(fixed.val_split) > 0 ? Number(fixed.val_split) : 0.1;
  // Every space key must be a config key of the run, checked with the space's own lower bounds
  // in every combination of branches (a branch's keys with the choice that selects it).
  for (const probe of spaceProbes(space.params)) {
    const branch = Object.entries(probe.branch).map(([k, v]) => `${k}=${v}`).join(", ");
    const source = `--space ${spacePath}${branch ? ` (branch ${branch})` : ""}`;
    resolveConfig(registry, [...run.layers, { source, values: probe.values }]);
  }

  const seedFlag = one("sampler_seed");
  const samplerSeed = seedFlag === undefined ? undefined : Number(seedFlag) + workerIndex;
  const samplerName = one("sampler") ?? "tpe";
  const sampler = registry.get("sampler", samplerName).create(space, {
    seed: samplerSeed,
    startupTrials: int("startup_trials", 10),
  });
  const prunerName = one("pruner") ?? "median";
  if (prunerName !== "median" && prunerName !== "none") {
    throw new RangeError(`--pruner must be median or none, got "${prunerName}"`);
  }
  const pruner = prunerName === "none" ? null : new MedianPruner({
    nStartupTrials: int("pruner_startup_trials", 5),
    nWarmupSteps: int("pruner_warmup_steps", 0),
  });

  const storage = await openJournalStorage(journal, {
    prefix: one("journal_prefix"),
    onWait: (ms, lockPath) =>
      log(
        `waiting for the journal lock ${lockPath}: ${
          Math.round(ms / 1000)
        } s so far (another writer holds it; one untouched for 30 s is taken to be a dead writer's)`,
      ),
  });
  const study = await Study.open(storage, { name: studyName, direction, sampler, pruner });
  const failed = await study.failStaleTrials();
  if (failed.length > 0) log(`marked trials ${failed.join(", ")} FAIL: their worker is gone`);
  const counted = async () => (await study.trials()).filter((t) => t.state !== TrialState.FAIL);
  const runsRoot = userPath(join("runs", studyFolderName(studyName)));
  log(
    `study "${studyName}" in ${journal}: ${metric} ${direction}, ${samplerName} sampler, pruner ${prunerName}, target ${trials} trials${
      workers > 1 ? `, ${workers} workers` : ""
    }`,
  );

  // Trials of this study from another journal would be overwritten: refuse, naming both.
  await checkTrialFolders(runsRoot, journal, parsed.booleans.has("overwrite"));
  const controller = new AbortController();
  let signal: "SIGINT" | "SIGTERM" | undefined;
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
    if (controller.signal.aborted) Deno.exit(name === "SIGINT" ? 130 : 143);
    signal = name;
    log(
      `\ninterrupted (${name}): the running trial stops, is marked FAIL and keeps its checkpoint`,
    );
    controller.abort();
  };
  const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM") } as const;
  for (const [name, h] of Object.entries(handlers)) Deno.addSignalListener(name as Deno.Signal, h);
  const maxFailures = int("max_failures", 10, 1);
  let failuresInARow = 0;
  let lastFailure = "";
  while (!study.stopRequested && !signal && (await counted()).length < trials) {
    const trial = await study.ask(space);
    // Two workers may ask at once for the last slot: the later one gives it back.
    const before = (await counted()).filter((t) => t.number <= trial.number);
    if (before.length > trials) {
      await study.tell(trial, { state: "fail" });
      break;
    }
    const params = trial.params as Config;
    const started = performance.now();
    const outcome = await runTrial({
      gpu,
      kernels,
      registry,
      plugins: pluginModules,
      layers: run.layers,
      valSplit,
      study,
      studyName,
      trial,
      metric,
      outDir: join(runsRoot, `trial-${trial.number}`),
      journal,
      signal: controller.signal,
    });
    log(
      `trial ${trial.number} ${outcome.line} ${JSON.stringify(params)} ${
        ((performance.now() - started) / 1000).toFixed(1)
      }s`,
    );
    if (outcome.state !== "fail") {
      failuresInARow = 0;
    } else if (!signal) {
      failuresInARow++;
      lastFailure = `trial ${trial.number}: ${outcome.reason}`;
      if (failuresInARow >= maxFailures) {
        for (const [name, h] of Object.entries(handlers)) {
          Deno.removeSignalListener(name as Deno.Signal, h);
        }
        await storage.close?.();
        gpu.destroy();
        throw new Error(
          `the search stopped: ${failuresInARow} trials in a row failed (--max-failures ${maxFailures}); the last: ${lastFailure}`,
        );
      }
    }
  }
  for (const [name, h] of Object.entries(handlers)) {
    Deno.removeSignalListener(name as Deno.Signal, h);
  }
  for (const child of children) {
    const status = await child.status;
    if (!status.success) log(`a worker exited with status ${status.code}`);
  }
  const all = await study.trials();
  const best = await study.bestTrial();
  const stateName = (state: number) =>
    Object.entries(TrialState).find(([, v]) => v === state)?.[0] ?? String(state);
  const states = Object.entries(Object.groupBy(all, (t) => stateName(t.state)))
    .map(([s, list]) => `${list!.length} ${s}`).join(", ");
  log(`study "${studyName}": ${all.length} trials (${states})`);
  if (best) {
    log(`best: trial ${best.number} ${metric}=${best.values![0]} ${JSON.stringify(best.params)}`);
  }
  await storage.close?.();
  gpu.destroy();
  if (json && workerIndex === 0) {
    console.log(
      JSON.stringify({
        best_value: best?.values?.[0] ?? null,
        best_params: best?.params ?? null,
        best_trial: best?.number ?? null,
        trials: all.length,
      }),
    );
  }
  return signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 0;
}

/**
 * One config per combination of a space's branches: each parameter at its first choice or lower
 * bound, every categorical with sub-spaces once per choice (`branch` names those choices). A
 * space of many branches yields at most `limit` probes.
 */
function spaceProbes(
  params: readonly ParamSpec[],
  limit = 256,
): { values: Config; branch: Config }[] {
  let probes: { values: Config; branch: Config }[] = [{ values: {}, branch: {} }];
  for (const p of params) {
    const d = p.distribution;
    const next: typeof probes = [];
    const choices = d.kind === "categorical" && p.branches
      ? d.choices
      : [d.kind === "categorical" ? d.choices[0]! : d.low];
    for (const base of probes) {
      for (const choice of choices) {
        const sub = p.branches?.get(String(choice));
        for (const tail of sub ? spaceProbes(sub, limit) : [{ values: {}, branch: {} }]) {
          if (next.length >= limit) continue;
          next.push({
            values: { ...base.values, [p.name]: choice, ...tail.values },
            branch: { ...base.branch, ...(p.branches ? { [p.name]: choice } : {}), ...tail.branch },
          });
        }
      }
    }
    probes = next;
  }
  return probes;
}
