/**
 * A trained model made ready for evaluation: the run's config built into a graph at the
 * evaluation's batch size, planned in evaluation mode (every parameter frozen: no gradients, no
 * optimizer state; with `inputGrad`, the backward to the input that attacks need), and the
 * checkpoint's weights loaded into it. Nothing is written to the checkpoint.
 *
 * @module
 */

import type { Gpu, Storage } from "../gpu/device.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { createCounters, GLOBAL_MICRO_STEP } from "../gpu/counters.ts";
import type { Graph } from "../graph/graph.ts";
import { ParamLayout } from "../graph/params.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { modelGraph } from "../train/build.ts";
import { ModelPlan } from "../train/plan.ts";
import { parseFreeze } from "../train/config.ts";
import type { Config, DatasetInfo, Registry } from "../train/registry.ts";
import type { EvalNet } from "./suite.ts";

/** A planned model with its weights. */
export interface LoadedNet extends EvalNet {
  graph: Graph;
}

/** What {@link loadNet} builds from. */
export interface LoadNetOptions {
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  /** The run's resolved config (its model, loss and keys). */
  config: Config;
  info: DatasetInfo;
  batch: number;
  precision: Storage;
  /** Record the evaluation-mode backward to the input (for crafting attacks). */
  inputGrad?: boolean;
  /** The checkpoint's weights (see {@link readWeights}). */
  weights: Weights;
}

/** A checkpoint's weights by parameter, in a layout of their own. */
export interface Weights {
  layout: ParamLayout;
  values: Float32Array;
}

/** Builds the model's evaluation plan in `gpu` (a scope the caller disposes) and loads weights. */
export async function loadNet(o: LoadNetOptions): Promise<LoadedNet> {
  const { graph, predictions, named } = await modelGraph(o.registry, o.config, o.info, o.batch);
  const plan = await named(() =>
    ModelPlan.build({
      gpu: o.gpu,
      kernels: o.kernels,
      graph,
      ops: o.registry.ops,
      counters: createCounters(o.gpu),
      randomCounter: GLOBAL_MICRO_STEP,
      seed: Number(o.config.seed ?? 0),
      precision: o.precision,
      frozen: () => true,
      inputGrad: { eval: o.inputGrad ?? false },
    })
  );
  // The same parameters by name; this plan's layout may pad them differently (f16).
  const flat = new Float32Array(plan.layout.total);
  const from = new Map(o.weights.layout.segments.map((s) => [s.param.name, s]));
  for (const seg of plan.layout.segments) {
    const source = from.get(seg.param.name);
    if (!source || source.size !== seg.size) {
      throw new RangeError(
        `the weights have no parameter "${seg.param.name}" of ${seg.size} values`,
      );
    }
    flat.set(o.weights.values.subarray(source.offset, source.offset + source.size), seg.offset);
  }
  o.gpu.write(plan.params, flat);
  return { plan, predictions, graph };
}

/**
 * The checkpoint's weights in the layout of the model the config builds (every parameter by
 * name and shape, optimizer state ignored); with `ema` (an EMA's name, `ema0.05`), that EMA of
 * the trainable weights with the frozen ones as they are. Fails naming the file and the tensor
 * that is missing or mis-shaped.
 */
export async function readWeights(
  path: string,
  registry: Registry,
  config: Config,
  info: DatasetInfo,
  ema?: string,
): Promise<Weights> {
  const { graph } = await modelGraph(registry, config, info, 1);
  if (!ema || ema === "plain") {
    const layout = new ParamLayout(graph.params, 1, () => false);
    return { layout, values: (await loadCheckpoint(path, layout, [])).params };
  }
  // The EMAs cover the run's trainable parameters: the layout the run had.
  const frozen = parseFreeze(config.freeze);
  const layout = new ParamLayout(graph.params, 1, (p) => !frozen(p.name));
  const data = await loadCheckpoint(path, layout, [], [ema]);
  const values = data.params;
  values.set(data.ema!.values[0]!.subarray(0, layout.trainableTotal));
  return { layout, values };
}
