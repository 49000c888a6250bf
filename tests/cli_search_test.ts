/**
 * `deno task search` end to end on the synthetic dataset: the journal is read by real Optuna,
 * a re-run continues the study, two workers share a journal, the median pruner stops trials,
 * Optuna's Redis journal works, and bad input names the flag.
 */

import assert from "node:assert";
import { join } from "node:path";
import { python, startRedis } from "./fixtures/search/helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const SPACE = {
  lr: { type: "float", low: 1e-4, high: 0.1, log: true },
  widths: { type: "categorical", choices: ["8", "24"] },
  optimizer: { type: "categorical", choices: ["adam", "sgd"] },
};
const FIXED = [
  "--dataset",
  "synthetic",
  "--model",
  "mlp",
  "--synthetic-train",
  "200",
  "--synthetic-test",
  "40",
];

async function search(cwd: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, "search", ...args],
    env: { INIT_CWD: cwd },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return {
    code: out.code,
    stdout,
    stderr,
    summary: () => JSON.parse(stdout.trim().split("\n").at(-1)!),
  };
}

/** What real Optuna sees in a journal: states, numbers, best value, intermediate values. */
async function optunaView(journal: string, study: string) {
  const code = `
import json, sys, logging, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(logging.WARNING)
storage = ${
    journal.startsWith("redis://")
      ? `optuna.storages.JournalStorage(optuna.storages.JournalRedisStorage(${
        JSON.stringify(journal)
      }))`
      : `optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(${
        JSON.stringify(journal)
      }))`
  }
s = optuna.load_study(study_name=${JSON.stringify(study)}, storage=storage)
complete = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
print(json.dumps({
  "numbers": [t.number for t in s.trials],
  "states": [t.state.name for t in s.trials],
  "best_value": s.best_value if complete else None,
  "best_params": s.best_params if complete else None,
  "intermediate": [len(t.intermediate_values) for t in s.trials],
  "direction": s.direction.name,
  "params": [t.params for t in s.trials],
  "distributions": [{k: type(d).__name__ for k, d in t.distributions.items()} for t in s.trials],
}))`;
  return JSON.parse((await python(["-c", code])).trim().split("\n").at(-1)!);
}

async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "search-" });
  await Deno.writeTextFile(join(dir, "space.json"), JSON.stringify(SPACE));
  return dir;
}

Deno.test("search: trials recorded in an Optuna journal that real Optuna loads with the same best; a re-run continues", async () => {
  const dir = await workspace();
  const args = [
    "--space",
    "space.json",
    "--study",
    "s",
    "--journal",
    "j.log",
    "--startup-trials",
    "2",
    "--sampler-seed",
    "1",
    "--epochs",
    "2",
    ...FIXED,
    "--json",
  ];
  const first = await search(dir, [...args, "--trials", "3"]);
  assert.strictEqual(first.code, 0, first.stderr);
  assert.strictEqual(first.summary().trials, 3);
  const second = await search(dir, [...args, "--trials", "5"]);
  assert.strictEqual(second.code, 0, second.stderr);
  const summary = second.summary();
  assert.strictEqual(summary.trials, 5, "continued to 5 trials");
  const optuna = await optunaView(join(dir, "j.log"), "s");
  assert.deepStrictEqual(optuna.numbers, [0, 1, 2, 3, 4]);
  assert.strictEqual(optuna.direction, "MAXIMIZE");
  assert.strictEqual(optuna.best_value, summary.best_value);
  assert.deepStrictEqual(optuna.best_params, summary.best_params);
  // Every complete trial reported one validation value per epoch.
  optuna.states.forEach((s: string, i: number) =>
    s === "COMPLETE" && assert.strictEqual(optuna.intermediate[i], 2)
  );
  for (let n = 0; n < 5; n++) {
    const files = [...Deno.readDirSync(join(dir, "runs", "s", `trial-${n}`))].map((e) => e.name);
    assert.ok(
      files.includes("model.safetensors") && files.includes("config.json") ||
        files.includes("model.safetensors"),
      `trial-${n} has its run files`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search: a conditional space {optimizer: adam → beta1, sgd → momentum}: each trial holds only its own parameters, and real Optuna loads the journal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search-" });
  await Deno.writeTextFile(
    join(dir, "space.json"),
    JSON.stringify({
      optimizer: {
        type: "categorical",
        choices: ["adam", "sgd"],
        conditional: {
          adam: { beta1: { type: "float", low: 0.8, high: 0.99 } },
          sgd: { momentum: { type: "float", low: 0.5, high: 0.95 } },
        },
      },
      lr: { type: "float", low: 1e-3, high: 0.1, log: true },
    }),
  );
  const r = await search(dir, [
    "--space",
    "space.json",
    "--study",
    "c",
    "--journal",
    "j.log",
    "--trials",
    "6",
    "--startup-trials",
    "3",
    "--sampler-seed",
    "4",
    "--epochs",
    "1",
    ...FIXED,
    "--json",
  ]);
  assert.strictEqual(r.code, 0, r.stderr);
  const optuna = await optunaView(join(dir, "j.log"), "c");
  assert.strictEqual(optuna.states.filter((s: string) => s === "COMPLETE").length, 6);
  const chosen = new Set<string>();
  optuna.params.forEach((p: Record<string, unknown>, i: number) => {
    const own = p.optimizer === "adam" ? "beta1" : "momentum";
    chosen.add(String(p.optimizer));
    assert.deepStrictEqual(Object.keys(p).sort(), [own, "lr", "optimizer"].sort(), `trial ${i}`);
    assert.deepStrictEqual(optuna.distributions[i][own], "FloatDistribution");
    // The trial trained with exactly these keys.
    const config = JSON.parse(
      Deno.readTextFileSync(join(dir, "runs", "c", `trial-${i}`, "config.json")),
    ).config;
    assert.strictEqual(config.optimizer, p.optimizer);
    assert.strictEqual(config[own], p[own]);
  });
  assert.deepStrictEqual([...chosen].sort(), ["adam", "sgd"], "both branches were tried");
  // A branch key that no plugin of that branch owns is refused before any trial, naming it.
  await Deno.writeTextFile(
    join(dir, "bad.json"),
    JSON.stringify({
      optimizer: {
        type: "categorical",
        choices: ["adam", "sgd"],
        conditional: { sgd: { beta1: { type: "float", low: 0.8, high: 0.99 } } },
      },
    }),
  );
  const bad = await search(dir, [
    "--space",
    "bad.json",
    "--study",
    "b",
    "--journal",
    "b.log",
    "--trials",
    "1",
    ...FIXED,
  ]);
  assert.notStrictEqual(bad.code, 0);
  assert.match(
    bad.stderr,
    /bad\.json \(branch optimizer=sgd\): unknown key "beta1"\n"beta1" is a key of optimizer "adam"/,
  );
  const grid = await search(dir, [
    "--space",
    "space.json",
    "--study",
    "g",
    "--journal",
    "g.log",
    "--trials",
    "1",
    "--sampler",
    "grid",
    ...FIXED,
  ]);
  assert.notStrictEqual(grid.code, 0);
  assert.match(grid.stderr, /grid sampler .* conditional/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search: --workers 2 share one journal without losing or duplicating a trial", async () => {
  const dir = await workspace();
  const { code, stderr, summary } = await search(dir, [
    "--space",
    "space.json",
    "--study",
    "w",
    "--journal",
    "j.log",
    "--trials",
    "6",
    "--workers",
    "2",
    "--sampler",
    "random",
    "--epochs",
    "1",
    ...FIXED,
    "--json",
  ]);
  assert.strictEqual(code, 0, stderr);
  const optuna = await optunaView(join(dir, "j.log"), "w");
  const done = optuna.states.filter((s: string) => s !== "FAIL").length;
  assert.strictEqual(done, 6, `states ${optuna.states}`);
  assert.deepStrictEqual(
    optuna.numbers,
    [...new Set(optuna.numbers as number[])].sort((a, b) => a - b),
  );
  assert.ok(summary().trials >= 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search: the median pruner stops trials whose validation loss trails the median", async () => {
  const dir = await workspace();
  // lr spans 1e-4..0.1: slow trials fall behind the median after the first epoch.
  const { code, stderr } = await search(dir, [
    "--space",
    "space.json",
    "--study",
    "p",
    "--journal",
    "j.log",
    "--trials",
    "10",
    "--sampler",
    "random",
    "--sampler-seed",
    "3",
    "--pruner-startup-trials",
    "2",
    "--metric",
    "val_loss",
    "--direction",
    "minimize",
    "--epochs",
    "4",
    ...FIXED,
  ]);
  assert.strictEqual(code, 0, stderr);
  const optuna = await optunaView(join(dir, "j.log"), "p");
  assert.strictEqual(optuna.direction, "MINIMIZE");
  const pruned = optuna.states.map((s: string, i: number) => [s, optuna.intermediate[i]]).filter((
    [s]: [string],
  ) => s === "PRUNED");
  assert.ok(pruned.length >= 1, `some trial is pruned: ${optuna.states}`);
  for (const [, steps] of pruned) {
    assert.ok(steps < 4, "a pruned trial stopped before its last epoch");
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search: Optuna's Redis journal (a real redis-server on loopback)", async () => {
  const dir = await workspace();
  await using redis = await startRedis(dir);
  const { code, stderr, summary } = await search(dir, [
    "--space",
    "space.json",
    "--study",
    "r",
    "--journal",
    redis.url,
    "--journal-prefix",
    "exp1",
    "--trials",
    "3",
    "--sampler",
    "random",
    "--epochs",
    "1",
    ...FIXED,
    "--json",
  ]);
  assert.strictEqual(code, 0, stderr);
  assert.strictEqual(summary().trials, 3);
  const optuna = await python([
    "-c",
    `
import logging, warnings, json
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(logging.WARNING)
st = optuna.storages.JournalStorage(optuna.storages.JournalRedisStorage(${
      JSON.stringify(redis.url)
    }, prefix="exp1"))
s = optuna.load_study(study_name="r", storage=st)
print(json.dumps([len(s.trials), s.best_value]))`,
  ]);
  const [count, best] = JSON.parse(optuna.trim().split("\n").at(-1)!);
  assert.strictEqual(count, 3);
  assert.strictEqual(best, summary().best_value);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search: bad input names the flag or file", async () => {
  const dir = await workspace();
  await Deno.writeTextFile(
    join(dir, "bad_space.json"),
    JSON.stringify({ lr: { type: "float", low: 1 } }),
  );
  await Deno.writeTextFile(
    join(dir, "unknown_key.json"),
    JSON.stringify({ learning_rate: { type: "float", low: 0.1, high: 1 } }),
  );
  const base = ["--study", "x", "--journal", "j.log", "--trials", "1", ...FIXED];
  const cases: [string[], RegExp][] = [
    [[...base], /search needs --space/],
    [["--space", "missing.json", ...base], /--space .*missing\.json/],
    [["--space", "bad_space.json", ...base], /--space .*bad_space\.json: .*lr/],
    [["--space", "unknown_key.json", ...base], /unknown key "learning_rate"/],
    [
      ["--space", "space.json", ...base, "--metric", "f1"],
      /--metric must be one of val_accuracy, val_loss, test_accuracy, test_loss/,
    ],
    [
      ["--space", "space.json", ...base, "--sampler", "cmaes"],
      /Cannot find sampler "cmaes": known are "grid", "random", "tpe"/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const { code, stderr } = await search(dir, args);
    assert.strictEqual(code, 1, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
  }
  await Deno.remove(dir, { recursive: true });
});
