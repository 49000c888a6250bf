/**
 * Whole-model gradients on the GPU: a graph planned with its training backward also taking
 * dLoss/dx, run once on given weights, input and labels; every parameter's gradient and the
 * input's read back, by name.
 */

import type { Graph } from "../../core/graph/graph.ts";
import { builtinOps } from "../../core/graph/rules.ts";
import { createCounters } from "../../core/gpu/counters.ts";
import { ModelPlan } from "../../core/train/plan.ts";
import { dispatchPhase, encodeSteps } from "../../core/train/step.ts";
import { ok, strictEqual } from "node:assert";
import { ParamLayout } from "../../core/graph/params.ts";
import { seededRandom } from "../../core/util/random.ts";
import { type InterpreterInputs, numericGradients } from "../reference/graph_interpreter.ts";
import { assertClose } from "./assert_close.ts";
import { testGpu } from "./gpu.ts";

/** What the GPU computed: the loss terms' values, each parameter's gradient, the input's. */
export interface GpuGrads {
  params: Map<string, Float32Array>;
  input: Float32Array;
  /** The plan's gradient buffer size in floats (the trainable prefix). */
  gradElements: number;
  backwardDispatches: number;
}

/** Runs one training forward and backward of `graph` (losses added) on `inputs`. */
export async function gpuGradients(
  graph: Graph,
  inputs: InterpreterInputs,
  options: { frozen?: (name: string) => boolean; inputGrad?: boolean } = {},
): Promise<GpuGrads> {
  const { gpu, kernels } = await testGpu();
  const scope = gpu.scope("model gradients");
  try {
    const k = kernels.withGpu(scope);
    const plan = await ModelPlan.build({
      gpu: scope,
      kernels: k,
      graph,
      ops: builtinOps(),
      counters: createCounters(scope),
      randomCounter: 2,
      seed: 1,
      frozen: options.frozen,
      inputGrad: { train: options.inputGrad ?? true },
    });
    const flat = new Float32Array(plan.layout.total);
    for (const s of plan.layout.segments) flat.set(inputs.params.get(s.param.name)!, s.offset);
    scope.write(plan.params, flat);
    scope.write(plan.x, Float32Array.from(inputs.input));
    scope.write(plan.labels, Uint32Array.from(inputs.labels));
    const encoder = scope.device.createCommandEncoder();
    encodeSteps(encoder, [
      { kind: "clear", label: "zero", buffer: plan.grads },
      dispatchPhase("pass", [...plan.refreshWeights, ...plan.trainForward, ...plan.backward]),
    ]);
    scope.submit([encoder.finish()]);
    const all = await scope.readF32(plan.grads);
    const params = new Map<string, Float32Array>();
    for (const s of plan.layout.segments) {
      if (s.offset < plan.layout.trainableTotal) {
        params.set(s.param.name, all.slice(s.offset, s.offset + s.size));
      }
    }
    const wantInput = options.inputGrad ?? true;
    if (wantInput && !plan.trainInputGrad) throw new Error("the plan took no input gradient");
    return {
      params,
      input: wantInput
        ? await scope.readF32(plan.trainInputGrad!, graph.inputs[0]!.size)
        : new Float32Array(),
      gradElements: plan.grads.size / 4,
      backwardDispatches: plan.backward.length,
    };
  } finally {
    scope.dispose();
  }
}

/** The whole-model checks' tolerance: f32 GPU gradients against float64 finite differences. */
export const GRAD_TOL = { atol: 3e-5, rtol: 2e-3 };

/**
 * Inputs for a whole-model gradient check: the layout's initial weights jittered (so no γ is
 * exactly 1), inputs in [−1, 1] and cycling labels — all f32 values, so the GPU and the float64
 * interpreter start from the same numbers.
 */
export function jitteredInputs(graph: Graph, seed: number, classes: number): InterpreterInputs {
  const random = seededRandom(seed);
  const layout = new ParamLayout(graph.params);
  const init = layout.initialValues(random);
  const params = new Map<string, Float64Array>();
  for (const s of layout.segments) {
    const v = Float64Array.from(
      init.subarray(s.offset, s.offset + s.size),
      (x) => x + 0.1 * (random() - 0.5),
    );
    params.set(s.param.name, Float64Array.from(Float32Array.from(v)));
  }
  const input = graph.inputs[0]!;
  return {
    params,
    input: Float64Array.from(Float32Array.from({ length: input.size }, () => 2 * random() - 1)),
    labels: Array.from({ length: graph.batch }, (_, r) => (r * 7 + seed) % classes),
  };
}

/**
 * Every parameter's and the input's GPU gradient against float64 finite differences of the graph
 * interpreter ({@link GRAD_TOL}); and, so the check can fail, the largest parameter gradient (of
 * `gradientOf`, default all) above `minGradient` (default 1e-2).
 */
export async function checkModelGradients(
  graph: Graph,
  inputs: InterpreterInputs,
  label: string,
  options: { minGradient?: number; gradientOf?: string } = {},
): Promise<{ gpu: GpuGrads; fd: ReturnType<typeof numericGradients> }> {
  const gpu = await gpuGradients(graph, inputs);
  const fd = numericGradients(graph, inputs);
  strictEqual(gpu.params.size, graph.params.length, `${label}: every parameter has a gradient`);
  for (const p of graph.params) {
    assertClose(gpu.params.get(p.name)!, fd.params.get(p.name)!, {
      ...GRAD_TOL,
      label: `${label} d${p.name}`,
    });
  }
  assertClose(gpu.input, fd.input, { ...GRAD_TOL, label: `${label} dx` });
  const watched = options.gradientOf === undefined
    ? [...fd.params.values()]
    : [fd.params.get(options.gradientOf)!];
  const biggest = Math.max(...watched.map((g) => Math.max(...g.map(Math.abs))));
  const min = options.minGradient ?? 1e-2;
  ok(biggest > min, `${label}: largest gradient ${biggest} (must exceed ${min})`);
  return { gpu, fd };
}
