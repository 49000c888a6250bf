/**
 * `deno task bench`: the adapter's ceilings (FMA throughput, copy bandwidth), matmul at
 * 1024³ and in each layout at the training shapes of the default BottleneckMLP, and its full
 * training step — each as a fraction of the ceiling — against TensorFlow.js's WebGPU backend in
 * the same process on the same adapter; and the step time of SAM against its base optimizer and
 * of SSAM against SAM, interleaved. `--tune` measures the candidate matmul tiles at each shape and
 * caches the fastest per adapter (see core/tuning.ts), which training then uses.
 *
 * @module
 */

import { join } from "@std/path";
import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { builtinRegistry } from "../../plugins/mod.ts";
import { resolveConfig } from "../train/config.ts";
import { Graph } from "../graph/graph.ts";
import { train } from "../train/trainer.ts";
import { copy, fmaFlops, fmaPeak } from "../ops/ceilings.ts";
import {
  matmul,
  MATMUL_TILE_CANDIDATES,
  type MatmulLayout,
  type MatmulTile,
} from "../ops/matmul.ts";
import { median, timeDispatch } from "../bench/timing.ts";
import { stepTimes } from "../bench/step_time.ts";
import { type PeerModel, tfjsMatmulGflops, tfjsTrainSamplesPerSec } from "../bench/tfjs_peer.ts";
import { torchPeer } from "../bench/torch_peer.ts";
import { stepFlop, trainingShapes } from "../bench/shapes.ts";
import { saveTuning, shapeKey, tileFor, type TuningCache } from "../ops/tuning.ts";
import { parseFlags, runLayers, userPath } from "./args.ts";
import { loadPlugins } from "./plugins.ts";
import { benchSuiteCommand } from "./bench_suite_command.ts";

const HELP = `Usage: deno task bench [--json] [--out DIR] [--tune] [--no-peer]
       [--torch [--python python3]] [--repeats 5] [--products 20] [--steps 20] [--size 1024]
       [--plugin PATH] [train flags]
       deno task bench --suite gpu --out DIR [--small] (see --suite gpu --help)

Measures the adapter's FMA and copy ceilings, matmul (A·B at --size³, and each layout at the
training shapes of the default BottleneckMLP for this adapter, or --arch/--batch-size), and the
training step, each against TensorFlow.js's WebGPU backend in the same process, and the step
time of SAM (over adam) against adam's and of SSAM against SAM's, interleaved. Every number is
--products back-to-back operations (or --steps steps) with one wait at the end, median of
--repeats. --tune first measures the candidate matmul tiles at each training shape and caches
the best for this adapter; training uses the cache. --torch also runs PyTorch (with --python's
interpreter) on the same product and training step, on CUDA when it has it: fp32 with TF32 off,
and TF32 on for reference.`;

/** Runs the bench command; returns the process exit code. */
export async function benchCommand(argv: string[]): Promise<number> {
  if (argv.some((a) => a === "--suite" || a.startsWith("--suite="))) {
    return await benchSuiteCommand(argv);
  }
  const parsed = parseFlags(argv, new Set(["json", "help", "tune", "no_peer", "torch"]));
  if (parsed.booleans.has("help")) {
    console.log(HELP);
    return 0;
  }
  const one = (k: string) => parsed.values.get(k)?.at(-1);
  const int = (k: string, fallback: number) => {
    const v = one(k) === undefined ? fallback : Number(one(k));
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`--${k} must be a positive integer, got "${one(k)}"`);
    }
    return v;
  };
  const repeats = int("repeats", 5);
  const products = int("products", 20);
  const steps = int("steps", 20);
  const size = int("size", 1024);
  const json = parsed.booleans.has("json");
  const peer = !parsed.booleans.has("no_peer");
  const log = (line: string) => (json ? console.error : console.log)(line);

  const registry = builtinRegistry();
  const gpu = await Gpu.open();
  const kernels = new KernelCache(gpu);
  await loadPlugins(parsed.values.get("plugin") ?? [], registry, kernels);
  const raw: Record<string, unknown> = {};
  const own = new Set([
    "json",
    "out",
    "tune",
    "no_peer",
    "torch",
    "python",
    "repeats",
    "products",
    "steps",
    "size",
    "plugin",
  ]);
  for (const [k, v] of parsed.values) if (!own.has(k)) raw[k] = v.at(-1);
  const run = runLayers(gpu.report.fallback, [], raw);
  const base = resolveConfig(registry, run.layers);
  const batch = Number(base.batch_size);
  const results: Record<string, unknown> = {
    adapter: gpu.report.description,
    fallback: gpu.report.fallback,
    date: new Date().toISOString(),
    command: `deno task bench ${argv.join(" ")}`.trim(),
    method:
      `${products} back-to-back operations (train: ${steps} steps) with one wait at the end, median of ${repeats}`,
  };
  log(
    `adapter: ${gpu.report.description}${
      gpu.report.fallback ? " (software adapter: not a GPU number)" : ""
    }`,
  );

  // Ceilings.
  const invocations = 256 * 256;
  const fmaOut = gpu.storage("fma out", invocations * 4);
  let iterations = 64;
  let fmaSeconds = 0;
  for (;;) {
    const d = await fmaPeak(kernels, { out: fmaOut, invocations, iterations, b: 0.999, c: 0.001 });
    fmaSeconds = await timeDispatch(gpu, d, products, fmaOut, iterations >= 1 << 16 ? repeats : 1);
    if (fmaSeconds > 0.2 || iterations >= 1 << 16) break;
    iterations *= 4;
  }
  const fmaPeakGflops = fmaFlops(invocations, iterations) * products / fmaSeconds / 1e9;
  const vec4s = Math.min(1 << 22, Math.floor(gpu.report.limits.maxStorageBufferBindingSize! / 16));
  const src = gpu.storage("copy src", vec4s * 16);
  const dst = gpu.storage("copy dst", vec4s * 16);
  const cd = await copy(kernels, { x: src, out: dst, vec4s });
  const copySeconds = await timeDispatch(gpu, cd, products, dst, repeats);
  const copyGbps = 2 * vec4s * 16 * products / copySeconds / 1e9;
  src.destroy();
  dst.destroy();
  Object.assign(results, { fma_peak_gflops: fmaPeakGflops, copy_gbps: copyGbps });
  log(`ceilings: FMA ${fmaPeakGflops.toFixed(2)} GFLOP/s, copy ${copyGbps.toFixed(2)} GB/s`);

  // Matmul shapes of the training step.
  const graph = new Graph(batch);
  const data = { features: 784, classes: 10 };
  registry.get("model", String(base.model)).build(
    graph,
    graph.input("x", data.features),
    base,
    data,
  );
  const shapes = trainingShapes(graph);
  const timeMatmul = async (
    s: { layout: MatmulLayout; m: number; n: number; k: number },
    tile: MatmulTile,
    reps: number,
    count: number,
  ) => {
    const [ar, ac] = s.layout === "tn" ? [s.k, s.m] : [s.m, s.k];
    const [br, bc] = s.layout === "nt" ? [s.n, s.k] : [s.k, s.n];
    const a = gpu.storage("bench a", new Float32Array(ar * ac).fill(0.5));
    const b = gpu.storage("bench b", new Float32Array(br * bc).fill(0.25));
    const c = gpu.storage("bench c", s.m * s.n * 4);
    const d = await matmul(kernels, { a, b, c, m: s.m, n: s.n, k: s.k, layout: s.layout, tile });
    const seconds = await timeDispatch(gpu, d, count, c, reps);
    for (const buf of [a, b, c]) buf.destroy();
    return 2 * s.m * s.n * s.k * count / seconds / 1e9;
  };
  const big = { layout: "nn" as const, m: size, n: size, k: size };

  if (parsed.booleans.has("tune")) {
    const tuned: TuningCache["matmul"] = {};
    // The training shapes (the --size³ product keeps the adapter default: sweeping every
    // candidate there takes minutes per tile on a software adapter).
    for (const s of shapes) {
      let best: { tile: MatmulTile; gflops: number } | undefined;
      for (const tile of MATMUL_TILE_CANDIDATES) {
        let gflops: number;
        try {
          // Enough products that each measurement is ~0.2 GFLOP of work, not the ~10 ms wait.
          const count = Math.min(1000, Math.max(products, Math.ceil(2e8 / (2 * s.m * s.n * s.k))));
          gflops = await timeMatmul(s, tile, 3, count);
        } catch {
          continue; // a tile the device's limits reject
        }
        if (!best || gflops > best.gflops) best = { tile, gflops };
      }
      if (best) {
        tuned[shapeKey(s.layout, s.m, s.n, s.k)] = best;
        log(
          `tune ${shapeKey(s.layout, s.m, s.n, s.k)}: ${JSON.stringify(best.tile)} ${
            best.gflops.toFixed(2)
          } GFLOP/s`,
        );
      }
    }
    log(`tuned tiles cached in ${await saveTuning(gpu, tuned)}`);
    results.tuned = tuned;
  }

  const matmulGflops = await timeMatmul(
    big,
    tileFor(gpu, big.layout, big.m, big.n, big.k),
    repeats,
    products,
  );
  const layoutTotals: Record<string, { flop: number; seconds: number }> = {};
  const shapeResults = [];
  for (const s of shapes) {
    // Small shapes get more products so the one wait at the end does not dominate.
    const count = Math.max(products, Math.min(1000, Math.ceil(2e8 / (2 * s.m * s.n * s.k))));
    const gflops = await timeMatmul(s, tileFor(gpu, s.layout, s.m, s.n, s.k), repeats, count);
    const flop = 2 * s.m * s.n * s.k * s.uses;
    const t = layoutTotals[s.layout] ??= { flop: 0, seconds: 0 };
    t.flop += flop;
    t.seconds += flop / (gflops * 1e9);
    shapeResults.push({ ...s, gflops });
  }
  const matmulLayouts = Object.fromEntries(
    Object.entries(layoutTotals).map(([l, t]) => [l, t.flop / t.seconds / 1e9]),
  );
  Object.assign(results, {
    matmul_gflops: matmulGflops,
    matmul_layouts: matmulLayouts,
    matmul_shapes: shapeResults,
  });
  log(
    `matmul ${size}³ A·B: ${matmulGflops.toFixed(2)} GFLOP/s (${
      (100 * matmulGflops / fmaPeakGflops).toFixed(1)
    }% of FMA peak)`,
  );
  for (const [l, g] of Object.entries(matmulLayouts)) {
    log(`matmul ${l} at the training shapes: ${g.toFixed(2)} GFLOP/s`);
  }

  // The training step: the same BottleneckMLP and batch, Adam, data resident on the GPU.
  const flopPerStep = stepFlop(shapes);
  const trainConfig = resolveConfig(registry, [...run.layers, {
    source: "bench",
    values: {
      dataset: "synthetic",
      synthetic_features: data.features,
      synthetic_classes: data.classes,
      synthetic_train: batch * steps,
      synthetic_test: batch,
      epochs: 1,
      log_every: steps,
      optimizer: "adam",
      weight_decay: 0,
    },
  }]);
  const outDir = await Deno.makeTempDir({ prefix: "bench-" });
  const trainRateOf = async (config: typeof trainConfig) => {
    const rates: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      const res = await train({ gpu, kernels, registry, config, outDir });
      if (r > 0) rates.push(res.samples_per_sec); // the first run warms up
    }
    return median(rates);
  };
  const trainRate = await trainRateOf(trainConfig);
  // The same step with f16 storage, where the adapter has it and the run did not ask for it.
  const f16Rate = gpu.has("shader-f16") && trainConfig.precision === "f32"
    ? await trainRateOf({ ...trainConfig, precision: "f16" })
    : null;
  await Deno.remove(outDir, { recursive: true });
  Object.assign(results, {
    model: `${base.model} ${base.arch || ""}`.trim(),
    batch,
    precision: trainConfig.precision,
    train_samples_per_sec: trainRate,
    train_gflops: (trainRate / batch) * flopPerStep / 1e9,
    train_f16_samples_per_sec: f16Rate,
  });
  log(
    `training step (${results.model}, batch ${batch}, Adam): ${trainRate.toFixed(0)} samples/s, ${
      (results.train_gflops as number).toFixed(2)
    } GFLOP/s in matmuls`,
  );
  if (f16Rate !== null) {
    log(`training step with f16 storage (--precision f16): ${f16Rate.toFixed(0)} samples/s`);
  }

  // SAM's step against its base optimizer's, and SSAM's against SAM's: interleaved in this run.
  const samConfigs = Object.fromEntries(
    [["adam", {}], ["sam", { optimizer: "sam" }], ["ssam", { optimizer: "ssam" }]].map((
      [name, values],
    ) => [
      name,
      resolveConfig(registry, [...run.layers, {
        source: "bench",
        values: {
          ...(trainConfig as Record<string, unknown>),
          ...(values as Record<string, unknown>),
          ...(name === "adam" ? {} : { sam_base: "adam" }),
        },
      }]),
    ]),
  );
  const sam = await stepTimes({ gpu, kernels, registry, configs: samConfigs, steps, repeats });
  Object.assign(results, {
    sam_step_ms: Object.fromEntries(Object.entries(sam.step).map(([k, v]) => [k, 1000 * v])),
    sam_vs_base_step_time: sam.step.sam! / sam.step.adam!,
    ssam_vs_sam_step_time: sam.step.ssam! / sam.step.sam!,
    ssam_mask_update_ms: 1000 * sam.periodic.ssam!,
  });
  log(
    `SAM step (over adam, batch ${batch}): ${(1000 * sam.step.sam!).toFixed(2)} ms, ${
      (sam.step.sam! / sam.step.adam!).toFixed(2)
    }× adam's ${(1000 * sam.step.adam!).toFixed(2)} ms; SSAM step ${
      (1000 * sam.step.ssam!).toFixed(2)
    } ms, ${(sam.step.ssam! / sam.step.sam!).toFixed(2)}× SAM's (its Fisher mask update: ${
      (1000 * sam.periodic.ssam!).toFixed(1)
    } ms once per update_freq epochs)`,
  );

  const peerModel: PeerModel = {
    features: data.features,
    classes: data.classes,
    depth: Number(base.depth),
    width: Number(base.width),
    expansion: Number(base.expansion),
    batch,
    lr: 1e-3,
  };
  if (peer) {
    const tfMatmul = await tfjsMatmulGflops(size, size, size, products, repeats);
    const tfTrain = await tfjsTrainSamplesPerSec(peerModel, steps, repeats);
    Object.assign(results, {
      tfjs_matmul_gflops: tfMatmul,
      tfjs_train_samples_per_sec: tfTrain,
      matmul_vs_tfjs: matmulGflops / tfMatmul,
      train_vs_tfjs: trainRate / tfTrain,
    });
    log(
      `TF.js WebGPU: matmul ${tfMatmul.toFixed(2)} GFLOP/s (ours ${
        (matmulGflops / tfMatmul).toFixed(2)
      }×), training ${tfTrain.toFixed(0)} samples/s (ours ${(trainRate / tfTrain).toFixed(2)}×)`,
    );
  } else {
    Object.assign(results, { tfjs_matmul_gflops: null, tfjs_train_samples_per_sec: null });
  }
  if (parsed.booleans.has("torch")) {
    const torch = await torchPeer(one("python") ?? "python3", {
      ...peerModel,
      size,
      products,
      steps,
      repeats,
    });
    Object.assign(results, {
      torch_device: torch.device,
      torch_version: torch.version,
      torch_threads: torch.threads,
      torch_blas: torch.blas,
      torch_blas_threads: torch.blas_threads,
      torch_matmul_gflops: torch.fp32.matmul_gflops,
      torch_train_samples_per_sec: torch.fp32.train_samples_per_sec,
      torch_tf32_matmul_gflops: torch.tf32?.matmul_gflops ?? null,
      torch_tf32_train_samples_per_sec: torch.tf32?.train_samples_per_sec ?? null,
      matmul_vs_torch: matmulGflops / torch.fp32.matmul_gflops,
      train_vs_torch: trainRate / torch.fp32.train_samples_per_sec,
    });
    const where = torch.device === "cpu"
      ? `CPU, ${torch.threads} threads, BLAS ${torch.blas}${
        torch.blas_threads === null ? "" : ` (${torch.blas_threads} threads)`
      }`
      : torch.device;
    if (torch.blas === "reference") {
      console.error(
        "warning: PyTorch's CPU matmuls ran on Debian's reference BLAS (~3 GFLOP/s on 2 cores), " +
          "not what a user of PyTorch gets; for a fair comparison install an optimised BLAS: " +
          "apt-get install -y libopenblas0-pthread",
      );
    }
    log(
      `PyTorch ${torch.version} (${where}) fp32: matmul ${
        torch.fp32.matmul_gflops.toFixed(2)
      } GFLOP/s (ours ${(matmulGflops / torch.fp32.matmul_gflops).toFixed(2)}×), training ${
        torch.fp32.train_samples_per_sec.toFixed(0)
      } samples/s (ours ${(trainRate / torch.fp32.train_samples_per_sec).toFixed(2)}×)${
        torch.tf32
          ? `; TF32: matmul ${torch.tf32.matmul_gflops.toFixed(2)} GFLOP/s, training ${
            torch.tf32.train_samples_per_sec.toFixed(0)
          } samples/s`
          : ""
      }`,
    );
  }
  Object.assign(results, {
    matmul_fraction_of_fma_peak: matmulGflops / fmaPeakGflops,
    train_fraction_of_fma_peak: (results.train_gflops as number) / fmaPeakGflops,
  });
  const out = one("out");
  if (out) {
    const dir = userPath(out);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "bench.json"), JSON.stringify(results, null, 2) + "\n");
    log(`results in ${join(dir, "bench.json")}`);
  }
  if (json) console.log(JSON.stringify(results));
  gpu.destroy();
  return 0;
}
