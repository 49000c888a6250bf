/**
 * Fault injection through the command line, as a careful user meets each fault: every case runs
 * `main.ts train` or `main.ts search` in a temporary folder and asserts the exit code, the message
 * and what is on disk afterwards — the previous checkpoint intact and loadable, the journal
 * loadable by our reader and by Optuna 3.1, no run folder damaged. Runs are tiny (synthetic
 * data, a 1-layer MLP) so the suite stays fast.
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { join } from "node:path";
import { readSafetensors, toFloat32 } from "../core/io/safetensors.ts";
import { openJournalStorage, TrialState } from "../core/search/mod.ts";
import { JournalFileLock } from "../core/search/file_lock.ts";
import { optunaTool } from "./fixtures/search/helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** A tiny run: 12 steps per epoch. */
const TINY = [
  "--dataset",
  "synthetic",
  "--synthetic-train",
  "384",
  "--synthetic-test",
  "64",
  "--model",
  "mlp",
  "--widths",
  "16",
  "--batch-size",
  "32",
  "--log-every",
  "4",
];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts <command> args` in `cwd`; with `kill`, sends that signal once `when` appears. */
async function cli(
  command: "train" | "search",
  args: string[],
  cwd: string,
  kill?: { signal: Deno.Signal; when: RegExp | { exists: string }; delayMs?: number },
): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", CONFIG, MAIN, command, ...args],
    cwd,
    env: { INIT_CWD: cwd },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stdout = "";
  let stderr = "";
  let sent = false;
  const read = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const chunk of stream) {
      add(decoder.decode(chunk));
      if (kill && !sent && kill.when instanceof RegExp && kill.when.test(stdout + stderr)) {
        sent = true;
        setTimeout(() => child.kill(kill.signal), kill.delayMs ?? 0);
      }
    }
  };
  // A file to wait for (polled): a state on disk, not a guess at how long a step takes.
  const when = kill?.when;
  const poll = when && !(when instanceof RegExp)
    ? setInterval(() => {
      Deno.stat(when.exists).then(() => {
        if (sent) return;
        sent = true;
        clearInterval(poll);
        setTimeout(() => child.kill(kill!.signal), kill!.delayMs ?? 0);
      }, () => {});
    }, 50)
    : undefined;
  await Promise.all([
    read(child.stdout, (s) => (stdout += s)),
    read(child.stderr, (s) => (stderr += s)),
  ]);
  clearInterval(poll);
  const { code } = await child.status;
  // With FAULT_REPORT naming a file, each run is appended to it (the issue note's fault table).
  const report = Deno.env.get("FAULT_REPORT");
  if (report) {
    const lines = (stdout + "\n" + stderr).split("\n").filter((l) =>
      l.trim() && !l.startsWith("!!")
    );
    const message = lines.filter((l) =>
      /^(error|warning|interrupted|diverged|stopped|note)|refus|keep/i.test(l)
    );
    await Deno.writeTextFile(
      report,
      JSON.stringify({ test: currentTest, command, args, code, message: message.slice(0, 3) }) +
        "\n",
      { append: true },
    );
  }
  return { code, stdout, stderr };
}

/** The name of the test running (for FAULT_REPORT). */
let currentTest = "";
const faultTest = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, async () => {
    currentTest = name;
    await fn();
  });

async function temp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "faults-" });
}

/** Every file of a folder with its bytes (to show nothing changed). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    const bytes = await Deno.readFile(join(dir, e.name));
    out[e.name] = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}

/** The checkpoint's weights are all finite, and it has the trainer's metadata. */
async function goodCheckpoint(path: string): Promise<Record<string, string>> {
  const { tensors, metadata } = await readSafetensors(path);
  for (const [name, t] of Object.entries(tensors)) {
    ok(toFloat32(t).every(Number.isFinite), `${path}: ${name} is finite`);
  }
  return metadata!;
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

faultTest(
  "fault: a diverging resumed run (huge lr, --checkpoint-every 2) keeps the last good checkpoint",
  async () => {
    const cwd = await temp();
    strictEqual((await cli("train", [...TINY, "--epochs", "1", "--out", "run"], cwd)).code, 0);
    const before = await snapshot(join(cwd, "run"));
    const r = await cli("train", [
      "--resume",
      "run",
      "--epochs",
      "3",
      "--lr",
      "1e7",
      "--checkpoint-every",
      "2",
      "--log-every",
      "50",
    ], cwd);
    strictEqual(r.code, 1, r.stderr);
    const m =
      /error: the (training loss|weights) (became|exploded)[^\n]*by optimizer step (\d+).*last good checkpoint \(if any\) is kept/
        .exec(r.stderr);
    ok(m, r.stderr);
    // The checkpoint left is finite, and from before the divergence (step 12 or a later good one).
    const meta = await goodCheckpoint(join(cwd, "run", "model.safetensors"));
    ok(Number(meta.step) >= 12 && Number(meta.step) < Number(m[3]), `checkpoint step ${meta.step}`);
    ok(before["model.safetensors"], "there was a checkpoint before");
  },
);

faultTest("fault: a finite but exploding loss is a divergence like NaN", async () => {
  const cwd = await temp();
  const r = await cli("train", [
    ...TINY,
    "--optimizer",
    "sgd",
    "--lr",
    "30",
    "--log-every",
    "1",
    "--out",
    "run",
  ], cwd);
  strictEqual(r.code, 1, r.stderr + r.stdout);
  match(
    r.stderr,
    /the training loss exploded to [\d.e+]+ by optimizer step \d+ \(1000× the first window's [\d.]+\)/,
  );
});

faultTest(
  "fault: values out of range are errors naming the flag, and leave no run folder",
  async () => {
    const cwd = await temp();
    for (
      const [args, pattern] of [
        [["--lr", "-1"], /^error: --lr must be a number > 0, got "-1"$/m],
        [["--warmup-steps", "-1"], /^error: --warmup-steps must be an integer ≥ 0, got "-1"$/m],
        [["--optimizer", "adam", "--eps", "0"], /^error: --eps must be a number > 0, got "0"$/m],
        [["--batchsize", "3"], /^error: unknown flag --batchsize; did you mean --batch-size\?$/m],
        [["--resume", ""], /^error: --resume needs the folder of a run to continue/m],
      ] as [string[], RegExp][]
    ) {
      const r = await cli("train", [...TINY, "--out", "never", ...args], cwd);
      strictEqual(r.code, 1, `${args}: ${r.stderr}`);
      match(r.stderr, pattern);
      ok(!(await exists(join(cwd, "never"))), `${args}: no stub run folder`);
    }
  },
);

faultTest(
  "fault: --out onto a finished run is refused (untouched) unless --overwrite",
  async () => {
    const cwd = await temp();
    strictEqual((await cli("train", [...TINY, "--epochs", "1", "--out", "run"], cwd)).code, 0);
    const before = await snapshot(join(cwd, "run"));
    const r = await cli("train", [...TINY, "--epochs", "1", "--out", "run"], cwd);
    strictEqual(r.code, 1);
    match(
      r.stderr,
      /--out .*run holds a run \(config\.json, curves\.svg, metrics\.jsonl, model\.safetensors\): choose another folder, continue it with --resume .*, or add --overwrite/,
    );
    deepStrictEqual(await snapshot(join(cwd, "run")), before);
    // A run whose config check fails does not touch it either.
    const bad = await cli("train", [...TINY, "--out", "run", "--overwrite", "--lr", "0"], cwd);
    strictEqual(bad.code, 1);
    deepStrictEqual(await snapshot(join(cwd, "run")), before);
    const over = await cli("train", [
      ...TINY,
      "--epochs",
      "1",
      "--seed",
      "3",
      "--out",
      "run",
      "--overwrite",
    ], cwd);
    strictEqual(over.code, 0, over.stderr);
    const config = JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json")));
    strictEqual(config.config.seed, 3);
    strictEqual(
      JSON.parse((await goodCheckpoint(join(cwd, "run", "model.safetensors"))).config!).seed,
      3,
    );
    const metrics = (await Deno.readTextFile(join(cwd, "run", "metrics.jsonl"))).trim().split("\n");
    strictEqual(
      metrics.filter((l) => l.includes('"epoch"') && l.includes('"type":"epoch"')).length,
      1,
      "metrics replaced, not appended",
    );
  },
);

faultTest(
  "fault: two runs on one --out at once: the second is refused, naming the first",
  async () => {
    const cwd = await temp();
    const first = cli("train", [...TINY, "--epochs", "60", "--out", "run"], cwd);
    // Start the second once the first holds the lock.
    for (let i = 0; i < 200 && !(await exists(join(cwd, "run", ".lock"))); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = await cli("train", [
      ...TINY,
      "--epochs",
      "1",
      "--seed",
      "9",
      "--out",
      "run",
      "--overwrite",
    ], cwd);
    strictEqual(second.code, 1, second.stderr);
    match(
      second.stderr,
      /run is in use by deno task train \(process \d+ on .*, since .*\); wait for it to end or choose another folder/,
    );
    strictEqual((await first).code, 0);
    const config = JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json")));
    const meta = await goodCheckpoint(join(cwd, "run", "model.safetensors"));
    deepStrictEqual(
      JSON.parse(meta.config!).seed,
      config.config.seed,
      "checkpoint and config match",
    );
    ok(!(await exists(join(cwd, "run", ".lock"))), "the lock is released");
  },
);

faultTest(
  "fault: --resume refuses keys that fix the run, records those that may change, continues a finished run",
  async () => {
    const cwd = await temp();
    strictEqual((await cli("train", [...TINY, "--epochs", "1", "--out", "run"], cwd)).code, 0);
    const r = await cli("train", ["--resume", "run", "--batch-size", "64"], cwd);
    strictEqual(r.code, 1);
    match(
      r.stderr,
      /--resume .*run: --batch-size cannot change on resume \(the run has 32, now 64\): it fixes the run's position and shapes/,
    );
    const moved = await cli("train", ["--resume", "run", "--out", "elsewhere"], cwd);
    strictEqual(moved.code, 1);
    match(moved.stderr, /--out cannot move a resumed run/);
    // Finished: says so and prints its summary.
    const done = await cli("train", ["--resume", "run", "--json"], cwd);
    strictEqual(done.code, 0, done.stderr);
    match(
      done.stderr,
      /the run is finished \(epoch 1 of 1\); add --epochs N \(N > 1\) to train it further/,
    );
    strictEqual(JSON.parse(done.stdout.trim().split("\n").at(-1)!).status, "finished");
    // More epochs continue it, and config.json records them.
    const more = await cli("train", ["--resume", "run", "--epochs", "2", "--json"], cwd);
    strictEqual(more.code, 0, more.stderr);
    match(more.stderr, /resuming at epoch 2, step 12/);
    strictEqual(JSON.parse(more.stdout.trim().split("\n").at(-1)!).steps, 24);
    strictEqual(
      JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json"))).config.epochs,
      2,
    );
    const again = await cli("train", ["--resume", "run"], cwd);
    match(again.stdout, /the run is finished \(epoch 2 of 2\)/);
  },
);

faultTest(
  "fault: resume errors name the file: no checkpoint yet, no config object, bad counters, other versions",
  async () => {
    const cwd = await temp();
    strictEqual((await cli("train", [...TINY, "--epochs", "1", "--out", "run"], cwd)).code, 0);
    // Killed before its first checkpoint.
    await Deno.mkdir(join(cwd, "early"));
    await Deno.copyFile(join(cwd, "run", "config.json"), join(cwd, "early", "config.json"));
    const early = await cli("train", ["--resume", "early"], cwd);
    strictEqual(early.code, 1);
    match(
      early.stderr,
      /--resume .*early: the run was stopped before its first checkpoint \(no model\.safetensors\), so there is nothing to continue/,
    );
    // config.json without a config object.
    await Deno.mkdir(join(cwd, "noconfig"));
    await Deno.writeTextFile(join(cwd, "noconfig", "config.json"), '{"recipe": null}');
    const nc = await cli("train", ["--resume", "noconfig"], cwd);
    match(
      nc.stderr,
      /noconfig\/config\.json: has no "config" object, so it was not written by deno task train/,
    );
    // A newer folder format.
    const future = JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json")));
    await Deno.mkdir(join(cwd, "future"));
    await Deno.writeTextFile(
      join(cwd, "future", "config.json"),
      JSON.stringify({ ...future, format: "webgpu-trainer-run/9" }),
    );
    const fu = await cli("train", ["--resume", "future"], cwd);
    match(
      fu.stderr,
      /run folder format "webgpu-trainer-run\/9", but this version of webgpu-trainer reads "webgpu-trainer-run\/1"/,
    );
    // An older (unversioned) folder resumes.
    const old = { ...future };
    delete old.format;
    await Deno.writeTextFile(join(cwd, "run", "config.json"), JSON.stringify(old));
    const resumed = await cli("train", ["--resume", "run", "--epochs", "2"], cwd);
    strictEqual(resumed.code, 0, resumed.stderr);
    strictEqual(
      JSON.parse(await Deno.readTextFile(join(cwd, "run", "config.json"))).format,
      "webgpu-trainer-run/1",
    );
    // Bad counters, and a checkpoint format from another version: rewrite the metadata.
    const { tensors, metadata } = await readSafetensors(join(cwd, "run", "model.safetensors"));
    const { writeSafetensorsAtomic } = await import("../core/io/safetensors.ts");
    await writeSafetensorsAtomic(join(cwd, "run", "model.safetensors"), tensors, {
      ...metadata!,
      counters: "[1,-2]",
    });
    const bc = await cli("train", ["--resume", "run", "--epochs", "3"], cwd);
    strictEqual(bc.code, 1);
    match(
      bc.stderr,
      /model\.safetensors: __metadata__\.counters must be a list of step counters \(integers ≥ 0\), got "\[1,-2\]"/,
    );
    await writeSafetensorsAtomic(join(cwd, "run", "model.safetensors"), tensors, {
      ...metadata!,
      format: "webgpu-trainer/9",
    });
    const fmt = await cli("train", ["--resume", "run", "--epochs", "3"], cwd);
    match(
      fmt.stderr,
      /checkpoint format "webgpu-trainer\/9", but this version of webgpu-trainer reads "webgpu-trainer\/1"/,
    );
    // Truncated (works already; kept working).
    const bytes = await Deno.readFile(join(cwd, "run", "model.safetensors"));
    await Deno.writeFile(
      join(cwd, "run", "model.safetensors"),
      bytes.subarray(0, bytes.length - 100),
    );
    const tr = await cli("train", ["--resume", "run", "--epochs", "3"], cwd);
    strictEqual(tr.code, 1);
    match(tr.stderr, /model\.safetensors/);
  },
);

faultTest(
  "fault: SIGTERM and SIGINT write a checkpoint and exit 143 / 130; a stray temporary file is removed",
  async () => {
    const cwd = await temp();
    for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      const out = `run-${signal}`;
      const r = await cli("train", [...TINY, "--epochs", "30", "--out", out], cwd, {
        signal,
        when: /epoch 1:/,
      });
      strictEqual(r.code, code, r.stderr);
      match(
        r.stdout + r.stderr,
        new RegExp(
          `interrupted \\(${signal}\\): stopping after the current steps and writing a checkpoint`,
        ),
      );
      const meta = await goodCheckpoint(join(cwd, out, "model.safetensors"));
      ok(Number(meta.step) >= 12, `checkpoint at step ${meta.step}`);
    }
    // What a SIGKILL during a checkpoint write leaves: a temporary file; the next run removes it.
    const stray = join(cwd, "run-SIGINT", "model.safetensors.tmp-99999");
    await Deno.writeFile(stray, new Uint8Array(10));
    const resumed = await cli("train", ["--resume", "run-SIGINT", "--epochs", "2"], cwd);
    strictEqual(resumed.code, 0, resumed.stderr);
    ok(!(await exists(stray)), "stray temporary removed");
  },
);

faultTest("fault: a full disk names the file and keeps the previous checkpoint", async () => {
  ok(
    Deno.uid() === 0,
    "this test mounts a small tmpfs: run the tests as root, as deno task test's setup does",
  );
  const mount = await Deno.makeTempDir({ prefix: "fulldisk-" });
  const sh = (cmd: string[]) => new Deno.Command(cmd[0]!, { args: cmd.slice(1) }).output();
  strictEqual(
    (await sh(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", mount])).code,
    0,
    "mount",
  );
  try {
    const big = TINY.map((a, i) => (TINY[i - 1] === "--widths" ? "256" : a));
    strictEqual(
      (await cli("train", [...big, "--epochs", "1", "--out", join(mount, "run")], mount)).code,
      0,
    );
    const before = await snapshot(join(mount, "run"));
    // Fill what is left, but for a little: the run's small files fit, a checkpoint does not.
    const filler = await Deno.open(join(mount, "filler"), { write: true, create: true });
    try {
      for (;;) await filler.write(new Uint8Array(4096));
    } catch {
      // full
    }
    filler.close();
    await Deno.truncate(
      join(mount, "filler"),
      Math.max(0, (await Deno.stat(join(mount, "filler"))).size - 24576),
    );
    const r = await cli("train", ["--resume", join(mount, "run"), "--epochs", "2"], mount);
    strictEqual(r.code, 1, r.stdout);
    match(
      r.stderr,
      /cannot (write|append to) .*(model\.safetensors|config\.json|metrics\.jsonl|curves\.svg) \(No space left on device/,
    );
    strictEqual(
      (await snapshot(join(mount, "run")))["model.safetensors"],
      before["model.safetensors"],
    );
    await goodCheckpoint(join(mount, "run", "model.safetensors"));
  } finally {
    await sh(["umount", mount]);
  }
});

faultTest(
  "fault: --keep-best keeps the best validation checkpoint; --early-stop stops a run that no longer improves",
  async () => {
    const cwd = await temp();
    const r = await cli("train", [
      ...TINY,
      "--epochs",
      "3",
      "--val-split",
      "0.25",
      "--keep-best",
      "--out",
      "best",
      "--json",
    ], cwd);
    strictEqual(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    ok(result.best && (await exists(result.best.path)), JSON.stringify(result.best));
    await goodCheckpoint(join(cwd, "best", "best.safetensors"));
    // A learning rate too small to move the weights: the validation accuracy never improves.
    const stop = await cli("train", [
      ...TINY,
      "--epochs",
      "6",
      "--lr",
      "1e-12",
      "--val-split",
      "0.25",
      "--early-stop",
      "2",
      "--out",
      "stop",
      "--json",
    ], cwd);
    strictEqual(stop.code, 0, stop.stderr);
    const s = JSON.parse(stop.stdout.trim().split("\n").at(-1)!);
    deepStrictEqual([s.status, s.steps], ["early-stopped", 3 * 9]);
    const needsVal = await cli("train", [...TINY, "--keep-best", "--out", "x"], cwd);
    match(needsVal.stderr, /--keep-best watches the validation accuracy: add a validation split/);
  },
);

/** A search space file. */
async function space(cwd: string, value: unknown): Promise<string> {
  await Deno.writeTextFile(join(cwd, "space.json"), JSON.stringify(value));
  return "space.json";
}

const SEARCH = [
  ...TINY,
  "--epochs",
  "1",
  "--study",
  "s",
  "--journal",
  "j.log",
  "--sampler",
  "random",
  "--sampler-seed",
  "1",
];

faultTest(
  "fault: a search whose every trial fails stops after --max-failures, quoting the last failure",
  async () => {
    const cwd = await temp();
    const r = await cli("search", [
      ...SEARCH,
      "--space",
      await space(cwd, { lr: { type: "float", low: 1e7, high: 1e8, log: true } }),
      "--optimizer",
      "sgd",
      "--trials",
      "50",
      "--max-failures",
      "3",
    ], cwd);
    strictEqual(r.code, 1, r.stdout);
    match(
      r.stderr,
      /error: the search stopped: 3 trials in a row failed \(--max-failures 3\); the last: trial 2: /,
    );
    const dump = (await optunaTool("dump", join(cwd, "j.log"))) as {
      trials: { state: number }[];
    }[];
    deepStrictEqual(dump[0]!.trials.map((t) => t.state), [
      TrialState.FAIL,
      TrialState.FAIL,
      TrialState.FAIL,
    ]);
  },
);

faultTest(
  "fault: a sampled config that is invalid fails that trial with the reason; the study goes on",
  async () => {
    const cwd = await temp();
    const r = await cli("search", [
      ...SEARCH,
      "--space",
      await space(cwd, { optimizer: { type: "categorical", choices: ["adam", "nope"] } }),
      "--trials",
      "3",
      "--max-failures",
      "30",
    ], cwd);
    strictEqual(r.code, 0, r.stderr);
    match(r.stdout, /FAIL \(Cannot find optimizer "nope": known are/);
    match(r.stdout, /COMPLETE val_accuracy=/);
    const st = await openJournalStorage(join(cwd, "j.log"));
    const failed = st.replay.trials.filter((t) => t.state === TrialState.FAIL);
    ok(
      failed.length > 0 &&
        failed.every((t) => /Cannot find optimizer "nope"/.test(String(t.userAttrs.fail_reason))),
    );
    await st.close();
  },
);

faultTest(
  "fault: SIGINT during a search marks the running trial FAIL, keeps its checkpoint, exits 130",
  async () => {
    const cwd = await temp();
    const r = await cli(
      "search",
      [
        // Epochs enough that trial 0 cannot finish before the signal; it comes once the
        // trial's first metrics window is on disk (the trial is training).
        ...SEARCH.map((a, i) => (SEARCH[i - 1] === "--epochs" ? "100000" : a)),
        "--space",
        await space(cwd, { lr: { type: "float", low: 1e-3, high: 1e-2, log: true } }),
        "--trials",
        "3",
      ],
      cwd,
      { signal: "SIGINT", when: { exists: join(cwd, "runs", "s", "trial-0", "metrics.jsonl") } },
    );
    strictEqual(r.code, 130, r.stderr + r.stdout);
    const dump = (await optunaTool("dump", join(cwd, "j.log"))) as {
      trials: { state: number; user_attrs: Record<string, string> }[];
    }[];
    const last = dump[0]!.trials.at(-1)!;
    strictEqual(last.state, TrialState.FAIL);
    match(last.user_attrs.fail_reason!, /interrupted; its checkpoint is kept/);
    await goodCheckpoint(
      join(cwd, "runs", "s", `trial-${dump[0]!.trials.length - 1}`, "model.safetensors"),
    );
  },
);

faultTest(
  "fault: a garbage last journal line is never appended after; Optuna still loads the journal",
  async () => {
    const cwd = await temp();
    const args = [
      ...SEARCH,
      "--space",
      await space(cwd, { lr: { type: "float", low: 1e-3, high: 1e-2 } }),
      "--trials",
      "1",
    ];
    strictEqual((await cli("search", args, cwd)).code, 0);
    await Deno.writeTextFile(join(cwd, "j.log"), "this is not json\n", { append: true });
    const before = await Deno.readTextFile(join(cwd, "j.log"));
    const r = await cli("search", [...args.slice(0, -1), "2"], cwd);
    strictEqual(r.code, 1, r.stdout);
    match(
      r.stderr,
      /j\.log: its last line \(byte \d+\) is not a valid record\. .*remove that line to continue/,
    );
    strictEqual(await Deno.readTextFile(join(cwd, "j.log")), before);
    const dump = (await optunaTool("dump", join(cwd, "j.log"))) as { trials: unknown[] }[];
    strictEqual(dump[0]!.trials.length, 1, "Optuna loads it (skipping the last line)");
  },
);

faultTest(
  "fault: a new journal reusing a study name does not overwrite the old trial folders",
  async () => {
    const cwd = await temp();
    const sp = await space(cwd, { lr: { type: "float", low: 1e-3, high: 1e-2 } });
    strictEqual((await cli("search", [...SEARCH, "--space", sp, "--trials", "1"], cwd)).code, 0);
    const before = await snapshot(join(cwd, "runs", "s", "trial-0"));
    const other = SEARCH.map((a) => (a === "j.log" ? "other.log" : a));
    const r = await cli("search", [...other, "--space", sp, "--trials", "1"], cwd);
    strictEqual(r.code, 1);
    match(
      r.stderr,
      /runs\/s holds the trials of another journal \(.*j\.log\); this search writes .*other\.log/,
    );
    deepStrictEqual(await snapshot(join(cwd, "runs", "s", "trial-0")), before);
  },
);

faultTest(
  "fault: releasing a journal lock that was broken and retaken by another writer fails and leaves theirs",
  async () => {
    const dir = await temp();
    const journal = join(dir, "j.log");
    await Deno.writeTextFile(journal, "");
    const ours = new JournalFileLock(journal);
    ok(await ours.tryAcquire());
    // Another writer takes it as stale: breaks ours, then holds its own.
    await Deno.remove(ours.lockPath);
    await new Promise((r) => setTimeout(r, 5));
    const theirs = new JournalFileLock(journal);
    ok(await theirs.tryAcquire());
    await ours.release().then(
      () => ok(false, "release should fail"),
      (e: Error) => match(e.message, /did not possess lock .*: another writer holds it now/),
    );
    ok(await exists(theirs.lockPath), "their lock is untouched");
    await theirs.release();
  },
);

faultTest(
  "fault: a long trial keeps writing heartbeats while it trains, so other hosts do not fail it",
  async () => {
    const { testGpu } = await import("./helpers/gpu.ts");
    const { builtinRegistry } = await import("../plugins/mod.ts");
    const { runTrial } = await import("../core/cli/search_trial.ts");
    const {
      JournalMemoryBackend,
      JournalStorage,
      Study,
      RandomSampler,
      parseSearchSpace,
      HEARTBEAT_ATTR,
    } = await import("../core/search/mod.ts");
    const { gpu, kernels } = await testGpu();
    const backend = new JournalMemoryBackend();
    let beats = 0;
    const append = backend.appendLines.bind(backend);
    backend.appendLines = (lines: string[]) => {
      beats += lines.filter((l) => l.includes(HEARTBEAT_ATTR)).length;
      return append(lines);
    };
    const study = await Study.open(new JournalStorage(backend), {
      name: "hb",
      direction: "maximize",
      sampler: new RandomSampler(1),
      pruner: null,
    });
    const trial = await study.ask(
      parseSearchSpace({ lr: { type: "float", low: 1e-3, high: 1e-2 } }),
    );
    const root = await temp();
    const outcome = await runTrial({
      gpu,
      kernels,
      registry: builtinRegistry(),
      layers: [{
        source: "test",
        values: {
          dataset: "synthetic",
          synthetic_train: 2048,
          model: "mlp",
          widths: "64",
          epochs: 3,
          batch_size: 16,
        },
      }],
      valSplit: 0.1,
      study,
      studyName: "hb",
      trial,
      metric: "val_accuracy",
      outDir: join(root, "trial-0"),
      heartbeatMs: 100,
    });
    strictEqual(outcome.state, "complete", outcome.line);
    ok(beats >= 4, `${beats} heartbeats during a trial of several seconds`);
  },
);
