import { builtinRegistry } from "../plugins/mod.ts";
import { resolveConfig } from "../core/train/config.ts";
import { Graph } from "../core/graph/graph.ts";
import { ParamLayout } from "../core/graph/params.ts";
import { epochPermutation } from "../core/train/data.ts";
import { mixupTable, train } from "../core/train/trainer.ts";
import { scheduledLrs } from "../core/train/build.ts";
import { seededRandom } from "../core/util/random.ts";
import { referenceLosses, type RefLinear } from "./reference/mlp_trainer.ts";
import { assertClose } from "./helpers/assert_close.ts";
import { testGpu } from "./helpers/gpu.ts";

async function golden(extra: { label_smoothing?: number; mixup?: number }, label: string) {
  const { gpu, kernels } = await testGpu();
  const registry = builtinRegistry();
  const seed = 3;
  const batch = 16;
  const config = resolveConfig(registry, [{
    source: "test",
    values: {
      dataset: "synthetic",
      synthetic_features: 20,
      synthetic_classes: 5,
      synthetic_train: 400,
      synthetic_test: 50,
      synthetic_noise: 90,
      model: "mlp",
      widths: "24,16",
      activation: "gelu",
      optimizer: "adamw",
      schedule: "cosine",
      warmup_steps: 4,
      lr: 0.01,
      weight_decay: 0.1,
      batch_size: batch,
      epochs: 1,
      log_every: 1,
      steps_per_submit: 1,
      seed,
      ...extra,
    },
  }]);
  const gpuLosses: [number, number][] = [];
  const outDir = await Deno.makeTempDir({ prefix: "golden-" });
  await train({
    gpu,
    kernels,
    registry,
    config,
    outDir,
    events: { window: (w) => gpuLosses.push([w.step, w.loss]) },
  });
  gpuLosses.sort((a, b) => a[0] - b[0]);

  // The reference: same data, same initial values, same batches, same lr table.
  const data = await registry.get("dataset", "synthetic").load(config);
  const features = data.info.features;
  const graph = new Graph(batch);
  registry.get("model", "mlp").build(graph, graph.input("x", features), config, data.info);
  const layout = new ParamLayout(graph.params);
  const init = layout.initialValues(seededRandom(seed));
  const segments = layout.segments;
  const layers: RefLinear[] = [];
  for (let i = 0; i < segments.length; i += 2) {
    const w = segments[i]!;
    const b = segments[i + 1]!;
    layers.push({
      w: Float64Array.from(init.subarray(w.offset, w.offset + w.size)),
      b: Float64Array.from(init.subarray(b.offset, b.offset + b.size)),
      outF: w.param.shape[0]!,
      inF: w.param.shape[1]!,
    });
  }
  const mean = data.mean[0]!;
  const std = data.std[0]!;
  const x = Float64Array.from(data.train.samples, (v) => (v / 255 - mean) / std);
  const steps = Math.floor(data.train.count / batch);
  const schedule = registry.get("schedule", "cosine");
  const expected = referenceLosses({
    layers,
    activation: "gelu",
    x,
    labels: data.train.labels,
    features,
    classes: data.info.classes,
    batch,
    order: epochPermutation(data.train.count, seed, 0, seededRandom),
    lrs: Float64Array.from(scheduledLrs(schedule, config, steps, steps)),
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.1,
    labelSmoothing: extra.label_smoothing,
    mixupLambdas: extra.mixup ? mixupTable(steps, extra.mixup, seed) : undefined,
  }, 20);
  const got = gpuLosses.slice(0, 20);
  if (got.length !== 20 || got.some(([step], i) => step !== i + 1)) {
    throw new Error(`expected one loss per step for steps 1..20, got steps ${got.map(([s]) => s)}`);
  }
  assertClose(got.map(([, l]) => l), expected, {
    atol: 0,
    rtol: 1e-3,
    label: `golden losses, steps 1-20 (${label})`,
  });
  // The run learned: the last loss is well below the first.
  if (!(got[19]![1] < 0.7 * got[0]![1])) {
    throw new Error(`loss did not fall: ${got[0]![1]} → ${got[19]![1]}`);
  }
  await Deno.remove(outDir, { recursive: true });
}

Deno.test("golden: a tiny MLP's first 20 training losses match a float64 CPU trainer within 1e-3 relative", () =>
  golden({}, "plain"));

Deno.test("golden: the same with label smoothing 0.1 and mixup α=0.4 matches the float64 trainer", () =>
  golden({ label_smoothing: 0.1, mixup: 0.4 }, "smoothing + mixup"));
