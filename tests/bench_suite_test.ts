import assert from "node:assert";
import { join } from "node:path";
import { fitCounts, measureWithin, SectionClock } from "../core/bench/budget.ts";
import { runGpuSuite } from "../core/bench/gpu_suite.ts";
import { SECTION_BUDGETS, SUITE_SECTIONS, suitePlan } from "../core/bench/suite_plan.ts";
import { suiteMarkdown, type SuiteRecord } from "../core/bench/suite_report.ts";
import { benchSuiteCommand } from "../core/cli/bench_suite_command.ts";
import { builtinRegistry } from "../plugins/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** A runner whose operations take `perOp` seconds of a fake clock, plus `wait` per run. */
function fakeRunner(perOp: number, wait = 0) {
  const state = { now: 0, runs: [] as number[] };
  return {
    state,
    clock: () => state.now,
    runner: {
      run(n: number) {
        state.runs.push(n);
        const t = n * perOp + wait;
        state.now += t;
        return Promise.resolve(t);
      },
      dispose() {},
    },
  };
}

Deno.test("suite budgets: the counts that fit, the probe, a section's shares", async () => {
  assert.deepStrictEqual(fitCounts(0.01, 20, 5, 10), { count: 20, repeats: 5 }, "fits as asked");
  assert.deepStrictEqual(fitCounts(0.01, 20, 5, 0.5), { count: 20, repeats: 2 }, "fewer repeats");
  assert.deepStrictEqual(fitCounts(0.1, 20, 5, 0.5), { count: 5, repeats: 1 }, "fewer operations");
  assert.deepStrictEqual(fitCounts(1, 20, 5, -3), { count: 1, repeats: 1 }, "at least one of each");

  // Without a budget: a warm-up, then count × repeats as asked (no probe).
  const plain = fakeRunner(0.001);
  const m = await measureWithin(plain.runner, { count: 20, repeats: 3 }, Infinity, plain.clock);
  assert.deepStrictEqual(plain.state.runs, [1, 20, 20, 20]);
  assert.deepStrictEqual({ ...m, seconds: Number(m.seconds.toFixed(6)) }, {
    seconds: 0.02,
    count: 20,
    repeats: 3,
    reduced: false,
  });
  // With one: the probe grows ×8 until a run takes 20 ms (a 10 ms wait hides one operation's
  // cost at first), then 1 s left at 1 ms an operation allows 1000 operations: 3 repeats of 200.
  const probed = fakeRunner(0.001, 0.01);
  const b = await measureWithin(probed.runner, { count: 200, repeats: 5 }, 1.12, probed.clock);
  assert.deepStrictEqual(probed.state.runs.slice(0, 4), [1, 1, 8, 64]);
  assert.strictEqual(b.count, 200);
  assert.ok(b.repeats >= 1 && b.repeats < 5 && b.reduced, JSON.stringify(b));
  assert.ok(probed.state.now <= 1.12 + 0.1, `spent ${probed.state.now} s of 1.12`);

  let now = 0;
  const clock = new SectionClock(30, () => now);
  assert.strictEqual(clock.share(3), 10);
  now = 12;
  assert.strictEqual(clock.left(), 18);
  assert.strictEqual(clock.share(2), 9);
  now = 31;
  assert.strictEqual(clock.share(1), 0, "spent: nothing left to share");
});

Deno.test("suite plan: the full run's shapes and budgets, --small's, and bad flag values", () => {
  const full = suitePlan({ small: false });
  assert.deepStrictEqual(full.models.map((m) => `${m.arch} b${m.batch}`), [
    "B_4-Wi_512 b256",
    "B_6-Wi_1024 b1024",
    "B_6-Wi_1024 b4096",
    "B_12-Wi_1024 b1024",
    "B_12-Wi_1024 b4096",
  ]);
  assert.deepStrictEqual(full.matmulSizes, [1024, 4096]);
  assert.deepStrictEqual(full.trainFlags, ["--preset", "mnist-gpu"]);
  // Under 5 minutes on a GPU with room for starting up and overruns.
  const total = Object.values(full.budgets).reduce((a, b) => a + b, 0);
  assert.strictEqual(total, 255);
  assert.deepStrictEqual(Object.keys(full.budgets), [...SUITE_SECTIONS]);
  const small = suitePlan({ small: true, models: 2, budgetScale: 2 });
  assert.deepStrictEqual(small.models.map((m) => m.arch), ["B_4-Wi_32", "B_6-Wi_64"]);
  assert.strictEqual(small.budgets.tune, 2 * SECTION_BUDGETS.tune);
  assert.throws(
    () => suitePlan({ small: true, models: 6 }),
    /--models must be an integer from 1 to 5, got "6"/,
  );
  assert.throws(
    () => suitePlan({ small: true, budgetScale: 0 }),
    /--budget-scale must be a positive number/,
  );
});

Deno.test("suite flags: each bad one is named before anything runs", async () => {
  const cases: [string[], RegExp][] = [
    [["--suite", "cpu", "--out", "x"], /--suite must be "gpu" \(the only suite\), got "cpu"/],
    [["--suite", "gpu"], /--suite gpu needs --out DIR/],
    [["--suite", "gpu", "--out", "x", "--models", "0"], /--models must be an integer from 1 to 5/],
    [
      ["--suite", "gpu", "--out", "x", "--sections", "ceilings,speed"],
      /--sections: unknown section "speed"; known are "ceilings", "matmul"/,
    ],
    [
      ["--suite", "gpu", "--out", "x", "--batch-size", "8"],
      /flag --batch-size is not a flag of --suite gpu; its flags are --out, --small, --sections, --models, --budget-scale, --python/,
    ],
  ];
  for (const [argv, message] of cases) await assert.rejects(benchSuiteCommand(argv), message);
});

Deno.test("suite: a software adapter stops a full run before anything is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "suite-" });
  const outDir = join(dir, "out");
  const lines: string[] = [];
  await assert.rejects(
    runGpuSuite({
      registry: builtinRegistry(),
      plan: suitePlan({ small: false }),
      outDir,
      python: "python3",
      sections: new Set(SUITE_SECTIONS),
      command: "test",
      log: (l) => lines.push(l),
    }),
    /is a software one \(isFallbackAdapter: true\).*--suite gpu stops here.*add --small to rehearse/s,
  );
  assert.match(lines[0]!, /^adapter: llvmpipe .*\(isFallbackAdapter: true\) — software$/);
  await assert.rejects(Deno.stat(outDir), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("suite: a section that fails is recorded and the others still run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "suite-" });
  const record = await runGpuSuite({
    registry: builtinRegistry(),
    plan: suitePlan({ small: true, budgetScale: 20 }),
    outDir: dir,
    python: "/nonexistent/python3",
    sections: new Set(["ceilings", "torch", "tuned"]),
    command: "test",
    log: () => {},
  });
  const status = Object.fromEntries(record.sections.map((s) => [s.name, s.status]));
  assert.deepStrictEqual(status, {
    ceilings: "ok",
    matmul: "skipped",
    steps: "skipped",
    tiny: "skipped",
    tfjs: "skipped",
    torch: "failed",
    train: "skipped",
    tune: "skipped",
    tuned: "skipped",
  });
  const by = (name: string) => record.sections.find((s) => s.name === name)!;
  assert.match(by("torch").error!, /--torch: cannot run --python "\/nonexistent\/python3"/);
  assert.strictEqual(by("matmul").error, "not in --sections");
  assert.match(by("tuned").error!, /no tuned tiles: the tune section did not run/);
  assert.deepStrictEqual(by("ceilings").items.map((i) => [i.id, i.unit]), [
    ["FMA f32", "GFLOP/s"],
    ["FMA f16", "GFLOP/s"],
    ["copy", "GB/s"],
  ]);
  for (const item of by("ceilings").items) assert.ok(item.value! > 0, `${item.id}: ${item.value}`);
  const file = JSON.parse(await Deno.readTextFile(join(dir, "suite.json")));
  assert.deepStrictEqual(file.sections, JSON.parse(JSON.stringify(record.sections)));
  assert.ok(file.finished !== null);
  const md = await Deno.readTextFile(join(dir, "suite.md"));
  assert.match(md, /\| torch \| failed \| [\d.]+ \| 600 \| --torch: cannot run --python/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("suite Markdown: ours against the peers by key, tuned tiles, what was not measured", () => {
  const item = (over: Record<string, unknown>) => ({ status: "ok" as const, ...over }) as never;
  const section = (name: string, items: unknown[], extra = {}) => ({
    name,
    title: name,
    status: "ok" as const,
    budget_seconds: 10,
    seconds: 1.25,
    items: items as never[],
    ...extra,
  });
  const record: SuiteRecord = {
    format: "webgpu-trainer gpu-suite 1",
    command: "deno task bench --suite gpu --out x",
    small: false,
    adapter: {
      description: "NVIDIA H100",
      vendor: "nvidia",
      architecture: "hopper",
      fallback: false,
      software: false,
      features: ["shader-f16"],
    },
    method: "m",
    started: "s",
    updated: "u",
    finished: "f",
    sections: [
      section("ceilings", [item({ id: "FMA f32", value: 50000, unit: "GFLOP/s" })]),
      section("matmul", [
        item({
          id: "matmul f32 4096³",
          key: "matmul 4096³",
          value: 20000,
          unit: "GFLOP/s",
          ceiling: "of FMA f32",
          fraction_of_ceiling: 0.4,
        }),
        item({ id: "matmul f32 nn:8x8x8", value: 1, unit: "GFLOP/s", table: false }),
      ]),
      section("steps", [
        item({ id: "step f32 B_4", key: "step B_4", value: 1000, unit: "samples/s" }),
      ]),
      section("tfjs", [
        item({ id: "TF.js matmul 4096³", key: "matmul 4096³", value: 5000, unit: "GFLOP/s" }),
      ]),
      section("torch", [
        item({
          id: "PyTorch fp32 step B_4",
          key: "step B_4",
          precision: "fp32",
          value: 4000,
          unit: "samples/s",
        }),
        {
          id: "PyTorch tf32 step B_4",
          status: "skipped",
          key: "step B_4",
          error: "skipped: the 30 s budget was spent",
        },
      ], { info: { device: "NVIDIA H100" } }),
      section("tuned", [item({ id: "step f32 B_4", value: 1100, unit: "samples/s" })]),
    ],
  };
  const md = suiteMarkdown(record);
  assert.match(
    md,
    /\| matmul f32 4096³ \| 20 000 GFLOP\/s \| 40\.0% of FMA f32 \| 5 000 GFLOP\/s \| 4× \|/,
  );
  assert.match(
    md,
    /\| step f32 B_4 \| 1 000 samples\/s \| {2}\| {2}\| {2}\| 4 000 samples\/s \| 0\.25× \| {2}\| 1 100 samples\/s \(1\.1×\) \|/,
  );
  assert.ok(!md.includes("nn:8x8x8"), "per-shape rows stay in the JSON");
  assert.match(md, /- torch: PyTorch tf32 step B_4 — skipped: skipped: the 30 s budget was spent/);
  assert.match(md, /PyTorch: device "NVIDIA H100"/);
  assert.match(md, /\| ceilings \| ok \| 1\.3 \| 10 \| {2}\|/);
});

Deno.test("deno task bench --suite gpu --small: every section on the software adapter, JSON and Markdown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "suite-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--config",
      CONFIG,
      MAIN,
      "bench",
      "--suite",
      "gpu",
      "--small",
      "--models",
      "1",
      // Budgets far above what these shapes need: no item is skipped however loaded the machine.
      "--budget-scale",
      "20",
      "--out",
      "s",
      "--python",
      "/usr/bin/python3",
    ],
    env: { INIT_CWD: dir, XDG_CACHE_HOME: join(dir, "cache") },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.strictEqual(out.code, 0, `${stdout}\n${stderr}`);
  assert.match(
    stdout.split("\n")[0]!,
    /^adapter: llvmpipe .*\(isFallbackAdapter: true\) — software$/,
  );
  const record: SuiteRecord = JSON.parse(await Deno.readTextFile(join(dir, "s", "suite.json")));
  assert.strictEqual(record.small, true);
  assert.ok(record.finished !== null);
  assert.deepStrictEqual(
    record.sections.map((s) => [s.name, s.status]),
    SUITE_SECTIONS.map((s) => [s, "ok"]),
  );
  const ids = (name: string) =>
    record.sections.find((s) => s.name === name)!.items.map((i) => i.id);
  const items = (name: string) => record.sections.find((s) => s.name === name)!.items;
  for (const s of record.sections) {
    for (const i of s.items) {
      assert.strictEqual(i.status, "ok", `${s.name}: ${i.id}: ${i.error}`);
      if (i.unit !== undefined) assert.ok(i.value! > 0, `${s.name}: ${i.id}: ${i.value}`);
    }
  }
  assert.deepStrictEqual(ids("ceilings"), ["FMA f32", "FMA f16", "copy"]);
  // The square products in f32 and f16, 11 training shapes in each, and their per-model sums.
  const matmul = ids("matmul");
  assert.deepStrictEqual(matmul.slice(0, 4), [
    "matmul f32 128³",
    "matmul f16 128³",
    "matmul f32 256³",
    "matmul f16 256³",
  ]);
  assert.strictEqual(matmul.length, 4 + 2 * 11 + 2);
  assert.deepStrictEqual(matmul.slice(-2), [
    "matmul f32 at the training shapes of B_4-Wi_32 b8",
    "matmul f16 at the training shapes of B_4-Wi_32 b8",
  ]);
  assert.deepStrictEqual(ids("steps"), ["step f32 B_4-Wi_32 b8", "step f16 B_4-Wi_32 b8"]);
  const step = items("steps")[0]!;
  assert.strictEqual(
    step.parameters,
    784 * 32 + 32 + 4 * (2 * 32 + 32 * 128 + 128 + 128 * 32 + 32) + 32 * 10 + 10,
  );
  assert.ok((step.fraction_of_ceiling as number) > 0 && (step.fraction_of_ceiling as number) < 1);
  assert.deepStrictEqual(ids("tiny"), ["tiny MLP B_1-Wi_16 b8 steps/s"]);
  assert.deepStrictEqual(ids("tfjs"), [
    "TF.js matmul 128³",
    "TF.js matmul 256³",
    "TF.js step B_4-Wi_32 b8",
  ]);
  // PyTorch here has no CUDA: recorded as such, and measured on the CPU (fp32 only).
  const torch = record.sections.find((s) => s.name === "torch")!;
  assert.strictEqual(torch.info?.cuda, "cuda unavailable");
  assert.strictEqual(torch.info?.device, "cpu");
  assert.deepStrictEqual(ids("torch"), [
    "PyTorch fp32 matmul 128³",
    "PyTorch fp32 matmul 256³",
    "PyTorch fp32 step B_4-Wi_32 b8",
  ]);
  const train = items("train")[0]!;
  assert.strictEqual(train.run_status, "completed");
  assert.strictEqual(train.steps, 4); // 1024 samples / batch 256, one epoch
  assert.ok((train.test_accuracy as number) > 0.1 && (train.test_accuracy as number) <= 1);
  assert.strictEqual(train.tiles, "built-in tiles");
  await Deno.stat(join(dir, "s", "train-mnist-gpu", "model.safetensors"));
  // The 3 largest shapes tuned and cached for the adapter; the steps again with those tiles.
  const tune = record.sections.find((s) => s.name === "tune")!;
  assert.deepStrictEqual(ids("tune"), ["tune nt:8x32x784", "tune tn:32x784x8", "tune nt:8x128x32"]);
  const cache = JSON.parse(await Deno.readTextFile(tune.info!.cache as string));
  assert.strictEqual(cache.adapter, record.adapter.description);
  assert.deepStrictEqual(
    Object.keys(cache.matmul).sort(),
    ids("tune").map((i) => i.slice(5)).sort(),
  );
  assert.ok(String(tune.info!.cache).startsWith(join(dir, "cache")));
  assert.deepStrictEqual(ids("tuned"), ids("steps"));
  for (const i of items("tuned")) {
    assert.ok((i.vs_builtin as number) > 0, `${i.id}: ${i.vs_builtin}`);
  }
  const md = await Deno.readTextFile(join(dir, "s", "suite.md"));
  assert.ok(stdout.includes(md.trim()), "the table is printed at the end");
  assert.match(md, /^# GPU suite \(--small rehearsal/);
  assert.match(
    md,
    /\| step f32 B_4-Wi_32 b8 \| [\d ]+(\.\d+)? samples\/s \| [\d.]+% of FMA f32 \| [\d. ]+ samples\/s \| [\d.]+× \| [\d. ]+ samples\/s \| [\d.]+× \| {2}\| [\d. ]+ samples\/s \([\d.]+×\) \|/,
  );
  assert.match(md, /Training run \(`deno task train --json --out .*--preset mnist-gpu/);
  await Deno.remove(dir, { recursive: true });
});
