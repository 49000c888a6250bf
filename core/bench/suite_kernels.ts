/**
 * The GPU suite's kernel sections: the ceilings (FMA f32 and f16, copy) and matmul in f32 and f16
 * storage at the square sizes and at every training shape of the step models, with the built-in
 * tiles, each timed as `count` dispatches in one compute pass and one wait.
 *
 * @module
 */

import type { Gpu, Storage } from "../gpu/device.ts";
import { type Dispatch, encode, type KernelCache } from "../gpu/kernels.ts";
import { storageArray } from "../gpu/device.ts";
import { copy, fmaFlops, fmaPeak } from "../ops/ceilings.ts";
import { matmul, type MatmulLayout, type MatmulTile } from "../ops/matmul.ts";
import { shapeKey, tileFor } from "../ops/tuning.ts";
import { Graph } from "../graph/graph.ts";
import { resolveConfig } from "../train/config.ts";
import type { Registry } from "../train/registry.ts";
import { measureWithin, type TimedRunner } from "./budget.ts";
import { type Shape, trainingShapes } from "./shapes.ts";
import { modelLabel, productCount, type StepModel } from "./suite_plan.ts";
import type { SectionCode, SuiteContext } from "./gpu_suite.ts";
import type { SuiteItem } from "./suite_report.ts";

/** `run(n)`: n copies of `dispatch` in one compute pass, then a wait on `wait`. */
export function dispatchRunner(gpu: Gpu, dispatch: Dispatch, wait: GPUBuffer): TimedRunner {
  return {
    async run(n: number) {
      const start = performance.now();
      const encoder = gpu.device.createCommandEncoder({ label: `suite ${dispatch.label}` });
      const pass = encoder.beginComputePass({ label: `suite ${dispatch.label}` });
      for (let i = 0; i < n; i++) encode(pass, [dispatch]);
      pass.end();
      gpu.submit([encoder.finish()]);
      await gpu.read(wait, Math.min(16, wait.size));
      return (performance.now() - start) / 1000;
    },
    dispose() {},
  };
}

/** The fraction of the f32 FMA ceiling, when it was measured. */
function ofFma(ctx: SuiteContext, gflops: number): Partial<SuiteItem> {
  return ctx.found.fmaF32
    ? { ceiling: "of FMA f32", fraction_of_ceiling: gflops / ctx.found.fmaF32 }
    : {};
}

/** The ceilings: FMA throughput in f32 and f16 (iterations grown until a run is long), copy. */
export const ceilingsSection: SectionCode = async (ctx, run) => {
  const { plan } = ctx;
  const precisions: Storage[] = ["f32", "f16"];
  const tasks = precisions.length + 1;
  for (const [i, precision] of precisions.entries()) {
    await run.item(`FMA ${precision}`, tasks - i, async (budget) => {
      if (precision === "f16" && !ctx.gpu.has("shader-f16")) {
        throw new Error(`the adapter lacks shader-f16`);
      }
      const scope = ctx.gpu.scope(`FMA ${precision}`);
      try {
        const kernels = ctx.kernels.withGpu(scope);
        const invocations = plan.fmaInvocations;
        const out = scope.storage("fma out", invocations * 4);
        const probe = (iterations: number) =>
          fmaPeak(kernels, { out, invocations, iterations, b: 0.999, c: 0.001, precision });
        // Iterations grow until `products` dispatches take fmaTargetSeconds.
        let iterations = 64;
        let runner = dispatchRunner(scope, await probe(iterations), out);
        await runner.run(1);
        while (iterations < 1 << 16 && (await runner.run(plan.products)) < plan.fmaTargetSeconds) {
          iterations *= 4;
          runner = dispatchRunner(scope, await probe(iterations), out);
          await runner.run(1);
        }
        const m = await measureWithin(
          runner,
          { count: plan.products, repeats: plan.repeats },
          budget,
        );
        const gflops = fmaFlops(invocations, iterations) * m.count / m.seconds / 1e9;
        if (precision === "f32") ctx.found.fmaF32 = gflops;
        else ctx.found.fmaF16 = gflops;
        return { value: gflops, unit: "GFLOP/s", invocations, iterations, ...m };
      } finally {
        scope.dispose();
      }
    });
  }
  await run.item("copy", 1, async (budget) => {
    const scope = ctx.gpu.scope("copy");
    try {
      const maxBinding = scope.report.limits.maxStorageBufferBindingSize ?? plan.copyBytes;
      const vec4s = Math.floor(Math.min(plan.copyBytes, maxBinding) / 16);
      const src = scope.storage("copy src", vec4s * 16);
      const dst = scope.storage("copy dst", vec4s * 16);
      const d = await copy(ctx.kernels.withGpu(scope), { x: src, out: dst, vec4s });
      const m = await measureWithin(
        dispatchRunner(scope, d, dst),
        { count: plan.copies, repeats: plan.repeats },
        budget,
      );
      const gbps = 2 * vec4s * 16 * m.count / m.seconds / 1e9;
      ctx.found.copyGbps = gbps;
      return { value: gbps, unit: "GB/s", bytes: vec4s * 16, ...m };
    } finally {
      scope.dispose();
    }
  });
};

/** The matmul shapes of a step model's training step (from its graph; nothing is allocated). */
export function modelShapes(registry: Registry, model: StepModel): Shape[] {
  const config = resolveConfig(registry, [{
    source: "gpu suite",
    values: { model: "bottleneck-mlp", arch: model.arch, batch_size: model.batch },
  }]);
  const graph = new Graph(model.batch);
  registry.get("model", "bottleneck-mlp").build(graph, graph.input("x", 784), config, {
    features: 784,
    classes: 10,
  });
  return trainingShapes(graph);
}

/** GFLOP/s of one matmul shape in one storage type, with `tile`, within `budget` seconds. */
export async function timeMatmul(
  ctx: SuiteContext,
  s: { layout: MatmulLayout; m: number; n: number; k: number },
  precision: Storage,
  tile: MatmulTile,
  budget: number,
  repeats = ctx.plan.repeats,
): Promise<{ gflops: number; count: number; repeats: number; reduced: boolean }> {
  const scope = ctx.gpu.scope(`matmul ${s.layout}`);
  try {
    const kernels: KernelCache = ctx.kernels.withGpu(scope);
    const [ar, ac] = s.layout === "tn" ? [s.k, s.m] : [s.m, s.k];
    const [br, bc] = s.layout === "nt" ? [s.n, s.k] : [s.k, s.n];
    const fill = (count: number, v: number) =>
      storageArray(new Float32Array(count).fill(v), precision);
    const a = scope.storage("suite a", fill(ar * ac, 0.5));
    const b = scope.storage("suite b", fill(br * bc, 0.25));
    const c = scope.storage("suite c", s.m * s.n * (precision === "f16" ? 2 : 4));
    const d = await matmul(kernels, {
      a,
      b,
      c,
      m: s.m,
      n: s.n,
      k: s.k,
      layout: s.layout,
      tile,
      storage: { a: precision, b: precision, c: precision },
    });
    const want = { count: productCount(ctx.plan, s.m, s.n, s.k), repeats };
    const m = await measureWithin(dispatchRunner(scope, d, c), want, budget);
    return { gflops: 2 * s.m * s.n * s.k * m.count / m.seconds / 1e9, ...m };
  } finally {
    scope.dispose();
  }
}

/**
 * Matmul: the square products in f32 and f16, then every training shape of the step models (each
 * once, however many models share it), then per model and storage type the step's time-weighted
 * GFLOP/s over its shapes (each shape weighted by its uses per step).
 */
export const matmulSection: SectionCode = async (ctx, run) => {
  const { plan } = ctx;
  const precisions: Storage[] = ctx.gpu.has("shader-f16") ? ["f32", "f16"] : ["f32"];
  const byModel = plan.models.map((m) => ({ model: m, shapes: modelShapes(ctx.registry, m) }));
  const unique = new Map<string, Shape>();
  for (const { shapes } of byModel) {
    for (const s of shapes) unique.set(shapeKey(s.layout, s.m, s.n, s.k), s);
  }
  const tasks = plan.matmulSizes.length * precisions.length + unique.size * precisions.length;
  let done = 0;
  for (const size of plan.matmulSizes) {
    for (const precision of precisions) {
      const s = { layout: "nn" as const, m: size, n: size, k: size };
      await run.item(`matmul ${precision} ${size}³`, tasks - done++, async (budget) => {
        const tile = tileFor(ctx.gpu, s.layout, s.m, s.n, s.k);
        const t = await timeMatmul(ctx, s, precision, tile, budget);
        return {
          ...(precision === "f32" ? { key: `matmul ${size}³` } : {}),
          value: t.gflops,
          unit: "GFLOP/s",
          ...ofFma(ctx, t.gflops),
          tile,
          ...t,
        };
      });
    }
  }
  const measured = new Map<string, number>();
  for (const precision of precisions) {
    for (const [key, s] of unique) {
      const item = await run.item(`matmul ${precision} ${key}`, tasks - done++, async (budget) => {
        const tile = tileFor(ctx.gpu, s.layout, s.m, s.n, s.k);
        const t = await timeMatmul(ctx, s, precision, tile, budget);
        return { value: t.gflops, unit: "GFLOP/s", table: false, tile, ...t };
      });
      if (item.status === "ok") measured.set(`${precision} ${key}`, item.value!);
    }
  }
  for (const precision of precisions) {
    for (const { model, shapes } of byModel) {
      let flop = 0;
      let seconds = 0;
      let count = 0;
      for (const s of shapes) {
        const g = measured.get(`${precision} ${shapeKey(s.layout, s.m, s.n, s.k)}`);
        if (g === undefined) continue;
        count++;
        flop += 2 * s.m * s.n * s.k * s.uses;
        seconds += 2 * s.m * s.n * s.k * s.uses / (g * 1e9);
      }
      const id = `matmul ${precision} at the training shapes of ${modelLabel(model)}`;
      if (count === 0) {
        await run.record({ id, status: "skipped", error: "none of its shapes was measured" });
        continue;
      }
      const gflops = flop / seconds / 1e9;
      await run.record({
        id,
        status: "ok",
        value: gflops,
        unit: "GFLOP/s",
        ...ofFma(ctx, gflops),
        shapes_measured: `${count} of ${shapes.length}`,
      });
    }
  }
};
