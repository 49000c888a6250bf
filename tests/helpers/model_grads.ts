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
import type { InterpreterInputs } from "../reference/graph_interpreter.ts";
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
