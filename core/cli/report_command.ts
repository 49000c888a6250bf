/**
 * `deno task report --journal J --study S`: one self-contained HTML page about a study (ours or
 * one Optuna wrote): optimization history, fANOVA importances, parallel coordinates, intermediate
 * values and a table of trials linking to their run folders. Written to `--out FILE` (default
 * `S-report.html` beside the journal); the path is printed.
 *
 * @module
 */

import { dirname, join, relative } from "@std/path";
import echartsBundle from "echarts/dist/echarts.min.js" with { type: "text" };
import { parseFlags, studyFolderName, userPath } from "./args.ts";
import { studyReportHtml } from "../io/report_html.ts";
import type {
  ReportImportances,
  ReportParam,
  ReportTrial,
  StudyReportData,
  TrialStateName,
} from "../io/study_charts.ts";
import {
  type FrozenTrial,
  openJournalStorage,
  paramImportances,
  parseOptunaDatetime,
  StudyDirection,
  TrialState,
} from "../search/mod.ts";

const HELP = `Usage: deno task report --journal PATH --study NAME [--out FILE]

Writes one HTML file (self-contained: it opens from disk, offline) about a study: the
optimization history with the best value so far, parameter importances (fANOVA, as Optuna's
default evaluator), a parallel-coordinate plot, each trial's intermediate values (pruned and
failed trials marked) and a table of trials linking to their run folders.

  --journal PATH|redis://host:port/db   the study's journal (ours or Optuna's)
  --journal-prefix NAME   key prefix in Redis
  --study NAME            the study
  --out FILE              where to write (default NAME-report.html beside the journal)
  --runs DIR              the trials' run folders (default runs/NAME, else NAME/ beside the journal)
  --importance-seed N     seed of the importance forest (default 0)`;

const STATE_NAMES = Object.fromEntries(
  Object.entries(TrialState).map(([name, v]) => [v, name]),
) as Record<number, TrialStateName>;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Runs the report command; returns the process exit code. */
export async function reportCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, new Set(["help"]));
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  const one = (key: string) => parsed.values.get(key)?.at(-1);
  const need = (key: string) => {
    const v = one(key);
    if (v === undefined) throw new RangeError(`report needs --${key} (see --help)`);
    return v;
  };
  const known = new Set(["journal", "journal_prefix", "study", "out", "runs", "importance_seed"]);
  for (const key of parsed.values.keys()) {
    if (!known.has(key)) {
      throw new RangeError(`report: unknown flag --${key.replaceAll("_", "-")} (see --help)`);
    }
  }
  const journalArg = need("journal");
  const studyName = need("study");
  const redis = journalArg.startsWith("redis://");
  const journal = redis ? journalArg : userPath(journalArg);
  if (!redis && !(await exists(journal))) {
    throw new Error(`--journal ${journal}: no such file (give the journal a search wrote)`);
  }
  const seedRaw = one("importance_seed") ?? "0";
  const seed = Number(seedRaw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`--importance-seed must be an integer in [0, 2^32), got "${seedRaw}"`);
  }
  const out = one("out")
    ? userPath(one("out")!)
    : join(redis ? userPath(".") : dirname(journal), `${studyFolderName(studyName)}-report.html`);

  const storage = await openJournalStorage(journal, { prefix: one("journal_prefix") });
  let trials: FrozenTrial[];
  let directions: number[];
  try {
    const studies = await storage.getAllStudies();
    const study = studies.find((s) => s.name === studyName);
    if (!study) {
      const names = studies.map((s) => JSON.stringify(s.name)).join(", ") || "none";
      throw new RangeError(
        `--study ${JSON.stringify(studyName)} is not in ${journal}; its studies: ${names}`,
      );
    }
    trials = await storage.getAllTrials(study.studyId);
    directions = study.directions;
  } finally {
    await storage.close();
  }

  const runs = one("runs") ? userPath(one("runs")!) : await findRunsFolder(studyName, journal);
  const data: StudyReportData = {
    study: studyName,
    journal,
    direction: directions[0] === StudyDirection.MAXIMIZE ? "maximize" : "minimize",
    objectives: directions.length,
    trials: await Promise.all(trials.map((t) => reportTrial(t, runs, dirname(out)))),
    params: reportParams(trials),
    importances: importances(trials, seed),
    generated: new Date().toISOString(),
  };
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, studyReportHtml(data, { echarts: echartsBundle }));
  const imp = data.importances;
  const top = "error" in imp
    ? `no importances (${imp.error})`
    : `importances ${
      imp.values.map((v) => `${v.name} ${v.importance.toFixed(3)}`).join(", ")
    } (fANOVA)`;
  console.log(`study "${studyName}": ${trials.length} trials; ${top}`);
  console.log(`wrote ${out}`);
  return 0;
}

/** `runs/<study>` where the search ran, or `<study>/` beside the journal; undefined if neither. */
async function findRunsFolder(study: string, journal: string): Promise<string | undefined> {
  const candidates = [userPath(join("runs", studyFolderName(study)))];
  if (!journal.startsWith("redis://")) {
    candidates.push(join(dirname(journal), studyFolderName(study)));
  }
  for (const c of candidates) if (await exists(c)) return c;
  return undefined;
}

async function reportTrial(
  t: FrozenTrial,
  runs: string | undefined,
  reportDir: string,
): Promise<ReportTrial> {
  let seconds: number | null = null;
  if (t.datetimeStart && t.datetimeComplete) {
    seconds = (parseOptunaDatetime(t.datetimeComplete) - parseOptunaDatetime(t.datetimeStart)) /
      1000;
  }
  const trial: ReportTrial = {
    number: t.number,
    state: STATE_NAMES[t.state] ?? "FAIL",
    value: t.values?.[0] ?? null,
    params: { ...t.params },
    intermediate: [...t.intermediateValues].sort((a, b) => a[0] - b[0]),
    datetimeStart: t.datetimeStart,
    datetimeComplete: t.datetimeComplete,
    seconds,
  };
  const folder = runs ? join(runs, `trial-${t.number}`) : undefined;
  if (folder && await exists(folder)) {
    trial.runFolder = href(relative(reportDir, folder) || ".");
    if (await exists(join(folder, "curves.svg"))) {
      trial.curves = href(relative(reportDir, join(folder, "curves.svg")));
    }
  }
  return trial;
}

/** A relative path as a link target (each segment URL-encoded: a study name may hold `#`). */
function href(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** Every parameter any trial has, by name, with the axis its first trial's distribution gives. */
function reportParams(trials: readonly FrozenTrial[]): ReportParam[] {
  const seen = new Map<string, ReportParam>();
  for (const t of trials) {
    for (const [name, d] of Object.entries(t.distributions)) {
      if (seen.has(name)) continue;
      seen.set(
        name,
        d.kind === "categorical"
          ? { name, kind: d.kind, log: false, choices: d.choices.map(String) }
          : { name, kind: d.kind, log: d.log },
      );
    }
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function importances(trials: readonly FrozenTrial[], seed: number): ReportImportances {
  try {
    const r = paramImportances(trials, { seed });
    return { method: r.method, trials: r.trials, values: r.importances };
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return { error: e.message };
  }
}
