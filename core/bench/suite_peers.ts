/**
 * The GPU suite's peers and its real run: TF.js's WebGPU backend (in this process, its own device
 * on the same adapter) and PyTorch (a subprocess, CUDA fp32 with TF32 off and TF32 on for
 * reference) on the same square products and training steps, then `deno task train --json` on
 * the mnist-gpu preset as a subprocess, stopped with SIGTERM (it checkpoints and prints its
 * summary) when its budget is spent.
 *
 * @module
 */

import { join } from "@std/path";
import { fileURLToPath } from "node:url";
import { measureWithin, type TimedRunner } from "./budget.ts";
import { type PeerModel, tfjs, tfjsMatmulRunner, tfjsTrainRunner } from "./tfjs_peer.ts";
import { runTorchPeer, type TorchItem, type TorchLine } from "./torch_peer.ts";
import { modelLabel, productCount, type StepModel } from "./suite_plan.ts";
import { tuningPath } from "../ops/tuning.ts";
import type { SectionCode } from "./gpu_suite.ts";

function peerModel(m: StepModel): PeerModel {
  return {
    features: 784,
    classes: 10,
    depth: m.depth,
    width: m.width,
    expansion: m.expansion,
    batch: m.batch,
    lr: 1e-3,
  };
}

/** TF.js WebGPU: the square products (f32) and the step of every model (f32). */
export const tfjsSection: SectionCode = async (ctx, run) => {
  const { plan } = ctx;
  let tf;
  try {
    tf = await tfjs();
  } catch (e) {
    throw new Error(`TF.js could not start its WebGPU backend: ${(e as Error).message}`);
  }
  run.section.info = { version: tf.version?.tfjs ?? "unknown", backend: tf.getBackend() };
  const tasks: {
    id: string;
    key: string;
    make: () => Promise<TimedRunner>;
    count: number;
    per: number;
    unit: string;
  }[] = [
    ...plan.matmulSizes.map((n) => ({
      id: `TF.js matmul ${n}³`,
      key: `matmul ${n}³`,
      make: () => tfjsMatmulRunner(n, n, n),
      count: productCount(plan, n, n, n),
      per: 2 * n ** 3 / 1e9,
      unit: "GFLOP/s",
    })),
    ...plan.models.map((m) => ({
      id: `TF.js step ${modelLabel(m)}`,
      key: `step ${modelLabel(m)}`,
      make: () => tfjsTrainRunner(peerModel(m)),
      count: plan.steps,
      per: m.batch,
      unit: "samples/s",
    })),
  ];
  for (const [i, t] of tasks.entries()) {
    await run.item(t.id, tasks.length - i, async (budget) => {
      const runner = await t.make();
      try {
        const m = await measureWithin(runner, { count: t.count, repeats: plan.repeats }, budget);
        return { key: t.key, value: t.per * m.count / m.seconds, unit: t.unit, ...m };
      } finally {
        runner.dispose();
      }
    });
  }
};

/**
 * PyTorch on the same products and steps, in one subprocess that prints a line per measurement
 * (kept when it is stopped at the budget). Without CUDA: recorded as "cuda unavailable"; the
 * `--small` rehearsal then measures on the CPU so the code path runs (not a GPU peer).
 */
export const torchSection: SectionCode = async (ctx, run) => {
  const { plan } = ctx;
  const items: TorchItem[] = [
    ...plan.matmulSizes.map((n) => ({
      kind: "matmul" as const,
      key: `matmul ${n}³`,
      m: n,
      n,
      k: n,
      count: productCount(plan, n, n, n),
    })),
    ...plan.models.map((m) => ({
      kind: "train" as const,
      key: `step ${modelLabel(m)}`,
      steps: plan.steps,
      ...peerModel(m),
    })),
  ];
  const lines: TorchLine[] = [];
  let pending = Promise.resolve();
  const torchLine = async (line: TorchLine) => {
    if (line.kind === "info") {
      const { kind: _, ...info } = line;
      run.section.info = {
        ...info,
        ...(line.cuda ? {} : {
          cuda: "cuda unavailable",
          ...(plan.small
            ? { note: "measured on the CPU to exercise the code path; not a GPU peer" }
            : {}),
        }),
      };
    } else if (line.kind === "result") {
      const { kind: _, ...numbers } = line;
      await run.record({
        ...numbers,
        id: `PyTorch ${line.precision} ${line.key}`,
        status: "ok",
        value: line.gflops ?? line.samples_per_sec,
        unit: line.gflops === undefined ? "samples/s" : "GFLOP/s",
      });
    } else if (line.kind === "error") {
      await run.record({
        id: `PyTorch ${line.precision} ${line.key}`,
        status: line.error.startsWith("skipped") ? "skipped" : "failed",
        key: line.key,
        precision: line.precision,
        error: line.error,
      });
    }
  };
  const result = await runTorchPeer(ctx.python, {
    items,
    repeats: plan.repeats,
    // Seconds for the measurements; the margin covers starting Python and importing torch.
    budget_seconds: Math.max(1, run.clock.left() - 8),
    require_cuda: !plan.small,
  }, {
    timeoutMs: 1000 * Math.max(1, run.clock.left()),
    onLine(line) {
      lines.push(line);
      pending = pending.then(() => torchLine(line));
    },
  });
  await pending;
  const info = lines.find((l) => l.kind === "info");
  if (!info) {
    throw new Error(
      `--python "${ctx.python}" printed nothing (exit ${result.code}${
        result.timedOut ? ", stopped at the budget" : ""
      }); does it have PyTorch (import torch)?\n${result.stderr}`,
    );
  }
  if (info.kind === "info" && !info.cuda && !plan.small) {
    run.section.status = "skipped";
    run.section.error = "cuda unavailable: PyTorch has no CUDA device here";
    return;
  }
  if (result.timedOut || !lines.some((l) => l.kind === "done")) {
    run.section.error = result.timedOut
      ? "stopped at its budget; the measurements it printed are kept"
      : `it exited (${result.code}) before the end: ${result.stderr}`;
  }
};

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already gone.
  }
}

/** The repository's root, or null in a compiled binary (which runs `train` itself). */
function repoRoot(): string | null {
  return Deno.build.standalone ? null : fileURLToPath(new URL("../../", import.meta.url));
}

/**
 * `deno task train --json` on the mnist-gpu preset in a subprocess (its own device): its summary
 * line, its run folder under the suite's, its log in train.log.
 */
export const trainSection: SectionCode = async (ctx, run) => {
  const dir = join(ctx.outDir, "train-mnist-gpu");
  const flags = ["train", "--json", "--out", dir, "--overwrite", ...ctx.plan.trainFlags];
  const root = repoRoot();
  const args = root === null
    ? flags
    : ["run", "--allow-all", "--config", join(root, "deno.json"), join(root, "main.ts"), ...flags];
  const cache = tuningPath(ctx.gpu.report.description);
  const tiles = await Deno.stat(cache).then(
    () => `cached tiles (${cache})`,
    () => "built-in tiles",
  );
  await run.item("train mnist-gpu", 1, async (budget) => {
    const log = join(ctx.outDir, "train.log");
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: root ?? undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const file = await Deno.open(log, { write: true, create: true, truncate: true });
    const logged = child.stderr.pipeTo(file.writable);
    const stdout = new Response(child.stdout).text();
    let stopped = false;
    const timers = [setTimeout(() => {
      stopped = true;
      signal(child, "SIGTERM"); // it checkpoints, prints its summary and exits 143
      timers.push(setTimeout(() => signal(child, "SIGKILL"), 20_000));
    }, 1000 * budget)];
    const status = await child.status;
    for (const t of timers) clearTimeout(t);
    await logged;
    const last = (await stdout).trim().split("\n").at(-1) ?? "";
    let summary: Record<string, unknown>;
    try {
      summary = JSON.parse(last);
    } catch {
      const tail = (await Deno.readTextFile(log)).trim().split("\n").slice(-3).join("\n");
      throw new Error(`deno task train exited ${status.code} without its JSON summary:\n${tail}`);
    }
    return {
      value: Number(summary.samples_per_sec),
      unit: "samples/s",
      command: `deno task ${flags.join(" ")}`,
      run_status: summary.status,
      test_accuracy: summary.test_accuracy,
      test_loss: summary.test_loss,
      seconds: summary.seconds,
      steps: summary.steps,
      exit_code: status.code,
      stopped_at_budget: stopped,
      tiles,
      out_dir: dir,
      log,
    };
  });
};
