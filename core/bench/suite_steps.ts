/**
 * The GPU suite's training-step sections: the step (f32 and f16 storage) of each BottleneckMLP and
 * a tiny MLP's steps/s with the built-in tiles, the tile tuning at the training shapes, and the
 * steps again with the tuned tiles. A step is timed as the trainer runs it — the run built once
 * (synthetic data resident on the GPU, Adam), `count` steps encoded into one submission and one
 * wait on the metrics at the end, no readback between — without the trainer's metric windows,
 * evaluation or checkpoints.
 *
 * @module
 */

import type { Storage } from "../gpu/device.ts";
import { EPOCH_MICRO_STEP } from "../gpu/counters.ts";
import { MATMUL_TILE_CANDIDATES, type MatmulTile } from "../ops/matmul.ts";
import { overrideTuning, saveTuning, shapeKey, tileFor, type TuningCache } from "../ops/tuning.ts";
import { buildRun } from "../train/build.ts";
import { resolveConfig } from "../train/config.ts";
import { epochPermutation } from "../train/data.ts";
import { buildStep } from "../train/recipe.ts";
import { encodeSteps } from "../train/step.ts";
import { seededRandom } from "../util/random.ts";
import { measureWithin, type TimedRunner } from "./budget.ts";
import { type Shape, stepFlop, trainingShapes } from "./shapes.ts";
import { modelLabel, type StepModel } from "./suite_plan.ts";
import { modelShapes, timeMatmul } from "./suite_kernels.ts";
import type { SectionCode, SectionRun, SuiteContext } from "./gpu_suite.ts";
import type { SuiteItem } from "./suite_report.ts";

/** Rows of synthetic training data: two batches, cycled (the epoch cursor restarts on the GPU). */
const SYNTHETIC_BATCHES = 2;

/**
 * A built run of `model` whose `run(n)` encodes n training steps into one command buffer
 * (restarting the epoch cursor every epoch, as the trainer does between epochs) and waits once.
 */
export async function stepRunner(
  ctx: SuiteContext,
  model: StepModel,
  precision: Storage,
  steps: number,
): Promise<TimedRunner & { parameters: number; shapes: Shape[] }> {
  // Enough lr-table steps for the warm-up, the probe and every repeat.
  const totalSteps = steps * (ctx.plan.repeats + 3) + 8;
  const config = resolveConfig(ctx.registry, [{
    source: "gpu suite",
    values: {
      model: "bottleneck-mlp",
      arch: model.arch,
      batch_size: model.batch,
      dataset: "synthetic",
      synthetic_features: 784,
      synthetic_classes: 10,
      synthetic_train: model.batch * SYNTHETIC_BATCHES,
      synthetic_test: model.batch,
      epochs: Math.ceil(totalSteps / SYNTHETIC_BATCHES),
      optimizer: "adam",
      lr: 1e-3,
      weight_decay: 0,
      schedule: "constant",
      precision,
    },
  }]);
  const built = await buildRun({
    gpu: ctx.gpu,
    kernels: ctx.kernels,
    registry: ctx.registry,
    config,
  });
  try {
    const step = await buildStep(built);
    const { gpu, data, counters } = built;
    gpu.write(step.epochIndices, epochPermutation(data.fitCount, 0, 0, seededRandom));
    const cursor = [EPOCH_MICRO_STEP * 4, 4] as const;
    return {
      parameters: built.graph.parameterCount,
      shapes: trainingShapes(built.graph),
      async run(n: number) {
        const start = performance.now();
        const encoder = gpu.device.createCommandEncoder({ label: `suite ${n} steps` });
        for (let done = 0; done < n;) {
          const k = Math.min(n - done, data.stepsPerEpoch);
          encoder.clearBuffer(counters, ...cursor);
          encodeSteps(encoder, step.phases, k);
          done += k;
        }
        gpu.submit([encoder.finish()]);
        await gpu.read(step.metrics, 16);
        return (performance.now() - start) / 1000;
      },
      dispose: () => built.dispose(),
    };
  } catch (e) {
    built.dispose();
    throw e;
  }
}

/** One step measurement: samples/s, steps/s, GFLOP/s in its matmuls and the FMA fraction. */
async function timeStep(
  ctx: SuiteContext,
  model: StepModel,
  precision: Storage,
  steps: number,
  budget: number,
): Promise<Omit<SuiteItem, "id" | "status">> {
  if (precision === "f16" && !ctx.gpu.has("shader-f16")) {
    throw new Error("the adapter lacks shader-f16");
  }
  const runner = await stepRunner(ctx, model, precision, steps);
  try {
    const m = await measureWithin(runner, { count: steps, repeats: ctx.plan.repeats }, budget);
    const gflops = stepFlop(runner.shapes) * m.count / m.seconds / 1e9;
    return {
      value: model.batch * m.count / m.seconds,
      unit: "samples/s",
      steps_per_sec: m.count / m.seconds,
      step_ms: 1000 * m.seconds / m.count,
      gflops,
      ...(ctx.found.fmaF32
        ? { ceiling: "of FMA f32", fraction_of_ceiling: gflops / ctx.found.fmaF32 }
        : {}),
      parameters: runner.parameters,
      batch: model.batch,
      precision,
      ...m,
    };
  } finally {
    runner.dispose();
  }
}

/** The step of every model in f32 and f16, with the tiles in force (built-in or tuned). */
async function allSteps(ctx: SuiteContext, run: SectionRun, tiles: string): Promise<void> {
  const precisions: Storage[] = ["f32", "f16"];
  const tasks = ctx.plan.models.flatMap((m) => precisions.map((p) => [m, p] as const));
  for (const [i, [model, precision]] of tasks.entries()) {
    const label = modelLabel(model);
    await run.item(`step ${precision} ${label}`, tasks.length - i, async (budget) => ({
      ...(precision === "f32" ? { key: `step ${label}` } : {}),
      ...await timeStep(ctx, model, precision, ctx.plan.steps, budget),
      tiles,
    }));
  }
}

/** The training steps with the built-in tiles. */
export const stepsSection: SectionCode = (ctx, run) => allSteps(ctx, run, "built-in");

/** A tiny MLP's steps/s: what a step costs when the work is too small to fill the GPU. */
export const tinySection: SectionCode = async (ctx, run) => {
  const model = ctx.plan.tiny;
  await run.item(`tiny MLP ${modelLabel(model)} steps/s`, 1, async (budget) => {
    const t = await timeStep(ctx, model, "f32", ctx.plan.tinySteps, budget);
    return { ...t, value: t.steps_per_sec as number, unit: "steps/s", samples_per_sec: t.value };
  });
};

/**
 * Tuning: every training shape of the step models in f32, the biggest share of a step first, each
 * candidate tile (and the built-in one) timed within the shape's share of the budget; the fastest
 * is cached for the adapter after each shape (as `deno task bench --tune` does).
 */
export const tuneSection: SectionCode = async (ctx, run) => {
  const weight = new Map<string, { shape: Shape; flop: number }>();
  for (const model of ctx.plan.models) {
    for (const s of modelShapes(ctx.registry, model)) {
      const key = shapeKey(s.layout, s.m, s.n, s.k);
      const w = weight.get(key) ?? { shape: s, flop: 0 };
      w.flop += 2 * s.m * s.n * s.k * s.uses;
      weight.set(key, w);
    }
  }
  const order = [...weight.entries()].sort((a, b) => b[1].flop - a[1].flop)
    .slice(0, ctx.plan.tuneShapes);
  const tuned: TuningCache["matmul"] = {};
  for (const [i, [key, { shape }]] of order.entries()) {
    await run.item(`tune ${key}`, order.length - i, async (budget) => {
      const builtin = tileFor(ctx.gpu, shape.layout, shape.m, shape.n, shape.k);
      const same = (t: MatmulTile) => JSON.stringify(t) === JSON.stringify(builtin);
      // The built-in tile first, then its strategy's candidates: what the budget may leave out
      // is the other strategy's (direct tiles suit software adapters, shared ones GPUs).
      const others = MATMUL_TILE_CANDIDATES.filter((t) => !same(t));
      const kin = (t: MatmulTile) => (t.strategy ?? "shared") === (builtin.strategy ?? "shared");
      const candidates = [builtin, ...others.filter(kin), ...others.filter((t) => !kin(t))]
        .slice(0, ctx.plan.tuneCandidates);
      const start = run.clock.elapsed();
      let best: { tile: MatmulTile; gflops: number } | undefined;
      let builtinGflops: number | undefined;
      let tried = 0;
      for (const [j, tile] of candidates.entries()) {
        const left = budget - (run.clock.elapsed() - start);
        if (left <= 0) break;
        let gflops: number;
        try {
          gflops = (await timeMatmul(ctx, shape, "f32", tile, left / (candidates.length - j), 3))
            .gflops;
        } catch {
          continue; // a tile the device's limits reject
        }
        tried++;
        if (j === 0) builtinGflops = gflops;
        if (!best || gflops > best.gflops) best = { tile, gflops };
      }
      if (!best) throw new Error("no candidate tile ran");
      tuned[key] = best;
      ctx.found.tuned = { ...tuned };
      // Cached for training; this process keeps the built-in tiles until the tuned section.
      run.section.info = { cache: await saveTuning(ctx.gpu, tuned) };
      return {
        value: best.gflops,
        unit: "GFLOP/s",
        table: false,
        tile: best.tile,
        builtin_gflops: builtinGflops ?? null,
        candidates_tried: `${tried} of ${candidates.length}`,
      };
    });
  }
};

/** The training steps again with the tuned tiles (those the tune section found). */
export const tunedSection: SectionCode = async (ctx, run) => {
  const tuned = ctx.found.tuned;
  if (!tuned || Object.keys(tuned).length === 0) {
    run.section.status = "skipped";
    run.section.error = "no tuned tiles: the tune section did not run or tuned nothing";
    return;
  }
  overrideTuning(ctx.gpu, tuned);
  try {
    await allSteps(ctx, run, `tuned (${Object.keys(tuned).length} shapes)`);
  } finally {
    overrideTuning(ctx.gpu, null);
  }
  const before = ctx.record.sections.find((s) => s.name === "steps")?.items ?? [];
  for (const item of run.section.items) {
    const b = before.find((i) => i.id === item.id && i.status === "ok");
    if (item.status === "ok" && b?.value) item.vs_builtin = item.value! / b.value;
  }
};
