/**
 * The PyTorch peer of `deno task bench --torch`: `torch_peer.py` (embedded, so a compiled binary
 * carries it) run by a Python interpreter with torch — on a GPU machine the same GPU (CUDA), fp32
 * with TF32 off and, for reference, on. Never used in tests' timing assertions.
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

/** What the peer measured, and where. */
export interface TorchResults {
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
  fp32: TorchNumbers;
  /** TF32 matmuls (CUDA only). */
  tf32: TorchNumbers | null;
}

/** Runs the peer with `python`; fails with the interpreter's message when it cannot. */
export async function torchPeer(
  python: string,
  request: PeerModel & { size: number; products: number; steps: number; repeats: number },
): Promise<TorchResults> {
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
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(JSON.stringify(request)));
    await writer.close();
  } catch {
    // It exited before reading its input: its exit code and stderr below say why.
  }
  const out = await child.output();
  if (out.code !== 0) {
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join("\n");
    throw new Error(
      `--torch: "${python}" failed (exit ${out.code}); does it have PyTorch (import torch)?\n${stderr}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as TorchResults;
}
