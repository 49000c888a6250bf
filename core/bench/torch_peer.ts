/**
 * The PyTorch peer of `deno task bench --torch` and of the GPU suite: `torch_peer.py` (embedded,
 * so a compiled binary carries it) run by a Python interpreter with torch — on a GPU machine the
 * same GPU (CUDA), fp32 with TF32 off and, for reference, on. It prints one JSON line per
 * measurement, so a run stopped at its time budget keeps what it measured. Never used in tests'
 * timing assertions.
 *
 * @module
 */

import script from "./torch_peer.py" with { type: "text" };
import type { PeerModel } from "./tfjs_peer.ts";

/** One precision's numbers. */
export interface TorchNumbers {
  matmul_gflops: number;
  train_samples_per_sec: number;
}

/** Where the peer runs: the first line it prints. */
export interface TorchInfo {
  /** Whether PyTorch sees a CUDA device. */
  cuda: boolean;
  /** The CUDA device's name, or "cpu". */
  device: string;
  version: string;
  /** PyTorch's intra-op threads. */
  threads: number;
  /**
   * The BLAS behind CPU matmuls: "openblas", "mkl", "reference" (Debian's libblas.so.3 when no
   * optimised BLAS is installed: ~30× slower), "cuBLAS" on CUDA, or what PyTorch was built with.
   */
  blas: string;
  /** The BLAS's own thread count, where it says (OpenBLAS). */
  blas_threads: number | null;
}

/** What the peer measured, and where. */
export interface TorchResults extends Omit<TorchInfo, "cuda"> {
  fp32: TorchNumbers;
  /** TF32 matmuls (CUDA only). */
  tf32: TorchNumbers | null;
}

/** A measurement the peer is asked for: products of [m,k]·[k,n], or steps of a BottleneckMLP. */
export type TorchItem =
  | { kind: "matmul"; key: string; m: number; n: number; k: number; count: number }
  | ({ kind: "train"; key: string; steps: number } & PeerModel);

/** What the peer is asked to measure. */
export interface TorchRequest {
  items: TorchItem[];
  /** Median of this many repeats, after one warm-up. */
  repeats: number;
  /** Seconds for all items; each gets a share and shrinks its counts to fit. Default: none. */
  budget_seconds?: number;
  /** Measure nothing (only the info line) when PyTorch has no CUDA device. */
  require_cuda?: boolean;
  /** CPU intra-op threads; default PyTorch's own. */
  threads?: number;
}

/** One measurement, as the peer printed it. */
export type TorchLine =
  | ({ kind: "info" } & TorchInfo)
  | {
    kind: "result";
    key: string;
    precision: "fp32" | "tf32";
    seconds: number;
    count: number;
    repeats: number;
    gflops?: number;
    samples_per_sec?: number;
  }
  | { kind: "error"; key: string; precision: "fp32" | "tf32"; error: string }
  | { kind: "done" };

/** How a peer run ended: its lines, and why it stopped. */
export interface TorchRun {
  lines: TorchLine[];
  /** The interpreter's exit code (null when it was stopped at the timeout). */
  code: number | null;
  /** True when it was stopped at `timeoutMs`. */
  timedOut: boolean;
  /** The last lines of its stderr. */
  stderr: string;
}

/**
 * Runs the peer with `python`, handing each line to `onLine` as it arrives; stops it (SIGTERM,
 * then SIGKILL) after `timeoutMs`. Fails naming `--python` when the interpreter cannot start.
 */
export async function runTorchPeer(
  python: string,
  request: TorchRequest,
  options: { timeoutMs?: number; onLine?: (line: TorchLine) => void } = {},
): Promise<TorchRun> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(python, {
      args: ["-c", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new Error(`--torch: cannot run --python "${python}": ${(e as Error).message}`);
  }
  let timedOut = false;
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (options.timeoutMs !== undefined) {
    timers.push(setTimeout(() => {
      timedOut = true;
      kill(child, "SIGTERM");
      timers.push(setTimeout(() => kill(child, "SIGKILL"), 5000));
    }, Math.max(0, options.timeoutMs)));
  }
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(JSON.stringify(request)));
    await writer.close();
  } catch {
    // It exited before reading its input: its exit code and stderr below say why.
  }
  const lines: TorchLine[] = [];
  let pending = "";
  const decoder = new TextDecoder();
  const take = (text: string) => {
    if (!text.trim()) return;
    const line = JSON.parse(text) as TorchLine;
    lines.push(line);
    options.onLine?.(line);
  };
  for await (const chunk of child.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      take(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  take(pending);
  const status = await child.status;
  for (const t of timers) clearTimeout(t);
  return {
    lines,
    code: timedOut ? null : status.code,
    timedOut,
    stderr: (await stderr).trim().split("\n").slice(-3).join("\n"),
  };
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already gone.
  }
}

/**
 * `deno task bench --torch`: the --size³ product and the training step, fp32 (and TF32 on CUDA);
 * fails with the interpreter's message when it cannot run or a measurement fails.
 */
export async function torchPeer(
  python: string,
  request: PeerModel & { size: number; products: number; steps: number; repeats: number },
): Promise<TorchResults> {
  const { size, products, steps, repeats, ...model } = request;
  const run = await runTorchPeer(python, {
    items: [
      { kind: "matmul", key: "matmul", m: size, n: size, k: size, count: products },
      { kind: "train", key: "train", steps, ...model },
    ],
    repeats,
  });
  if (run.code !== 0) {
    throw new Error(
      `--torch: "${python}" failed (exit ${run.code}); does it have PyTorch (import torch)?\n${run.stderr}`,
    );
  }
  const info = run.lines.find((l) => l.kind === "info");
  const failed = run.lines.find((l) => l.kind === "error");
  if (!info || failed?.kind === "error") {
    throw new Error(
      `--torch: "${python}": ${failed?.kind === "error" ? failed.error : "no output"}`,
    );
  }
  const numbers = (precision: "fp32" | "tf32"): TorchNumbers | null => {
    const get = (key: string) =>
      run.lines.find((l) => l.kind === "result" && l.key === key && l.precision === precision) as
        | Extract<TorchLine, { kind: "result" }>
        | undefined;
    const [mm, tr] = [get("matmul"), get("train")];
    return mm && tr
      ? { matmul_gflops: mm.gflops!, train_samples_per_sec: tr.samples_per_sec! }
      : null;
  };
  const { cuda: _cuda, kind: _kind, ...where } = info;
  return { ...where, fp32: numbers("fp32")!, tf32: numbers("tf32") };
}
