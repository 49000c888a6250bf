import assert from "node:assert";
import { join } from "node:path";
import { torchPeer } from "../core/bench/torch_peer.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("deno task bench: --json and --out report every field, ours and TF.js's, at toy sizes (no timing asserted)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--config",
      CONFIG,
      MAIN,
      "bench",
      "--json",
      "--out",
      "b",
      "--repeats",
      "1",
      "--products",
      "2",
      "--steps",
      "2",
      "--size",
      "64",
      "--arch",
      "B_1-Wi_16",
      "--batch-size",
      "8",
      "--torch",
      "--python",
      "/usr/bin/python3",
    ],
    env: { INIT_CWD: dir, XDG_CACHE_HOME: join(dir, "cache") },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.strictEqual(out.code, 0, stderr);
  const line = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  for (
    const key of [
      "fma_peak_gflops",
      "copy_gbps",
      "matmul_gflops",
      "tfjs_matmul_gflops",
      "train_samples_per_sec",
      "tfjs_train_samples_per_sec",
    ]
  ) {
    assert.ok(typeof line[key] === "number" && line[key] > 0, `${key}: ${line[key]}`);
  }
  assert.strictEqual(typeof line.adapter, "string");
  assert.strictEqual(typeof line.fallback, "boolean");
  assert.deepStrictEqual(Object.keys(line.matmul_layouts).sort(), ["nn", "nt", "tn"]);
  // With shader-f16 (llvmpipe has it) the f16-storage step is measured too.
  assert.strictEqual(line.precision, "f32");
  // PyTorch on the same product and step: here on the CPU, so fp32 only (TF32 is CUDA's).
  assert.strictEqual(line.torch_device, "cpu");
  for (const key of ["torch_matmul_gflops", "torch_train_samples_per_sec", "train_vs_torch"]) {
    assert.ok(typeof line[key] === "number" && line[key] > 0, `${key}: ${line[key]}`);
  }
  assert.strictEqual(line.torch_tf32_train_samples_per_sec, null);
  // Which BLAS PyTorch ran on: on Debian, the libblas.so.3 its alternatives point at.
  assert.ok(["openblas", "reference", "mkl"].includes(line.torch_blas), line.torch_blas);
  const chosen = await Deno.realPath("/usr/lib/x86_64-linux-gnu/libblas.so.3").catch(() => null);
  if (chosen !== null && Deno.build.arch === "x86_64") {
    assert.strictEqual(line.torch_blas, chosen.includes("openblas") ? "openblas" : "reference");
  }
  if (line.torch_blas === "openblas") assert.ok(line.torch_blas_threads >= 1);
  assert.ok(line.train_f16_samples_per_sec > 0, `train_f16: ${line.train_f16_samples_per_sec}`);
  // SAM's step against its base's and SSAM's against SAM's, measured in this run.
  assert.deepStrictEqual(Object.keys(line.sam_step_ms).sort(), ["adam", "sam", "ssam"]);
  for (const v of Object.values(line.sam_step_ms)) assert.ok((v as number) > 0, `${v}`);
  for (const key of ["sam_vs_base_step_time", "ssam_vs_sam_step_time"]) {
    assert.ok(typeof line[key] === "number" && line[key] > 0, `${key}: ${line[key]}`);
  }
  assert.ok(line.ssam_mask_update_ms >= 0, `ssam_mask_update_ms: ${line.ssam_mask_update_ms}`);
  const file = JSON.parse(await Deno.readTextFile(join(dir, "b", "bench.json")));
  assert.deepStrictEqual(file, line);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task bench --torch: an interpreter that cannot run is named in the error", async () => {
  const request = {
    features: 4,
    classes: 2,
    depth: 1,
    width: 4,
    expansion: 2,
    batch: 2,
    lr: 1e-3,
    size: 4,
    products: 1,
    steps: 1,
    repeats: 1,
  };
  await assert.rejects(
    torchPeer("/nonexistent/python3", request),
    /--torch: cannot run --python "\/nonexistent\/python3"/,
  );
  // A program that runs but fails.
  await assert.rejects(
    torchPeer("/bin/false", request),
    /--torch: "\/bin\/false" failed \(exit 1\); does it have PyTorch/,
  );
});
