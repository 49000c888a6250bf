/**
 * `deno task report` end to end: a journal real Optuna 3.1 wrote, one of ours with run folders to
 * link, and bad input refused with a message naming the flag. The page itself is drawn in a browser by
 * report_browser_test.ts.
 */

import assert from "node:assert";
import { join } from "node:path";
import {
  categoricalDistribution,
  floatDistribution,
  openJournalStorage,
  StudyDirection,
  TrialState,
} from "../core/search/mod.ts";
import { optunaTool, tempDir } from "./fixtures/search/helpers.ts";
import { reportCommand } from "../core/cli/report_command.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Any = any;

async function report(cwd: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, "report", ...args],
    env: { INIT_CWD: cwd },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** The charts' options the page carries. */
function chartsOf(html: string): Record<string, Any> {
  const m = /<script type="application\/json" id="report-charts">(.*?)<\/script>/s.exec(html);
  assert.ok(m, "the page carries its charts");
  return JSON.parse(m[1]!);
}

Deno.test("report: a journal Optuna 3.1 wrote, beside the journal by default", async () => {
  await using dir = await tempDir();
  await optunaTool("importance-study", join(dir.path, "optuna.log"), "dominant", "20", "5");
  const r = await report(dir.path, ["--journal", "optuna.log", "--study", "dominant"]);
  assert.strictEqual(r.code, 0, r.stderr);
  const out = join(dir.path, "dominant-report.html");
  assert.match(r.stdout, new RegExp(`wrote ${out}\n`));
  assert.match(r.stdout, /study "dominant": 20 trials; importances x 0\.\d+/);
  const html = await Deno.readTextFile(out);
  assert.ok(html.length > 1_000_000, "the ECharts bundle is inlined");
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/, "nothing loaded from elsewhere");
  const charts = chartsOf(html);
  // 20 trials: 3 pruned (5, 11, 17), 1 failed (7), 16 complete.
  assert.strictEqual(charts.history.series[0].data.length, 16);
  const best = charts.history.series[1].data.map((p: number[]) => p[1]);
  assert.ok(best.every((v: number, i: number) => i === 0 || v <= best[i - 1]), "best so far");
  assert.deepStrictEqual(
    [...charts.importance.yAxis.data].sort(),
    ["c", "lr", "n", "x", "y"],
    "importances of every parameter of the intersection",
  );
  assert.strictEqual(charts.importance.yAxis.data.at(-1), "x", "x on top");
  assert.strictEqual(charts.parallel.series[0].data.length, 16);
  const names = charts.intermediate.series.map((s: Any) => s.name);
  assert.ok(names.includes("pruned here") && names.includes("failed here"), names.join());
  assert.strictEqual(html.match(/<tr class="state-/g)?.length, 20);
});

Deno.test("report: our journal links each trial to its run folder and curves", async () => {
  await using dir = await tempDir();
  const journal = join(dir.path, "runs", "mnist.log");
  const storage = await openJournalStorage(journal);
  const id = await storage.createStudy("mnist", [StudyDirection.MAXIMIZE]);
  const distributions = {
    lr: floatDistribution(1e-4, 1e-2, { log: true }),
    optimizer: categoricalDistribution(["adam", "sgd"]),
  };
  for (let n = 0; n < 4; n++) {
    await storage.createTrial(id, {
      state: n === 3 ? TrialState.PRUNED : TrialState.COMPLETE,
      values: n === 3 ? null : [0.9 + n / 100],
      params: { lr: 10 ** -(2 + n / 2), optimizer: n % 2 ? "sgd" : "adam" },
      distributions,
      intermediateValues: new Map([[1, 0.8 + n / 100]]),
      datetimeStart: "2026-01-01T00:00:00.000000",
      datetimeComplete: "2026-01-01T00:00:30.500000",
    });
  }
  await storage.close();
  const trialDir = join(dir.path, "runs", "mnist", "trial-1");
  await Deno.mkdir(trialDir, { recursive: true });
  await Deno.writeTextFile(join(trialDir, "curves.svg"), "<svg/>");

  const r = await report(dir.path, ["--journal", "runs/mnist.log", "--study", "mnist"]);
  assert.strictEqual(r.code, 0, r.stderr);
  const html = await Deno.readTextFile(join(dir.path, "runs", "mnist-report.html"));
  assert.match(
    html,
    /<a href="mnist\/trial-1">folder<\/a> · <a href="mnist\/trial-1\/curves.svg">/,
  );
  assert.strictEqual(html.match(/href="mnist\/trial-/g)?.length, 2, "only trial 1 has a folder");
  assert.match(html, /<td>30\.5<\/td>/, "the duration");
  assert.match(html, /<tr class="state-complete best"><td>2 ★/, "maximize: trial 2 is best");

  const other = join(dir.path, "elsewhere", "page.html");
  const r2 = await report(dir.path, [
    "--journal",
    journal,
    "--study",
    "mnist",
    "--out",
    "elsewhere/page.html",
  ]);
  assert.strictEqual(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, new RegExp(`wrote ${other}`));
  assert.match(await Deno.readTextFile(other), /href="\.\.\/runs\/mnist\/trial-1"/);
});

Deno.test("report: bad input is refused with a message naming the flag or file", async () => {
  await using dir = await tempDir();
  const journal = join(dir.path, "j.log");
  const storage = await openJournalStorage(journal);
  await storage.createStudy("one", [StudyDirection.MINIMIZE]);
  await storage.close();
  const missing = join(dir.path, "nope.log");
  const cases: [string[], RegExp][] = [
    [["--study", "one"], /report needs --journal/],
    [["--journal", missing, "--study", "one"], /--journal .*nope\.log: no such file/],
    [
      ["--journal", journal, "--study", "two"],
      /--study "two" is not in .*j\.log; its studies: "one"/,
    ],
    [["--journal", journal, "--study", "one", "--bogus", "1"], /unknown flag --bogus/],
    [["--journal", journal, "--study", "one", "--importance-seed", "-1"], /--importance-seed must/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(reportCommand(args), message, args.join(" "));
  }
  assert.ok(!(await Deno.stat(missing).catch(() => null)), "nothing created");
});
