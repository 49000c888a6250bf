/**
 * The matmul shapes of a model's training step, which the bench and the GPU suite time one by one
 * and tune, and the FLOP of a step they add up to.
 *
 * @module
 */

import type { Graph } from "../graph/graph.ts";
import type { MatmulLayout } from "../ops/matmul.ts";
import { shapeKey } from "../ops/tuning.ts";

/** A matmul shape of the training step. */
export interface Shape {
  layout: MatmulLayout;
  m: number;
  n: number;
  k: number;
  /** Times the step runs it. */
  uses: number;
}

/** The matmul shapes of a model's training step: forward (nt), dX (nn), dW (tn) per linear. */
export function trainingShapes(graph: Graph): Shape[] {
  const shapes = new Map<string, Shape>();
  const add = (layout: MatmulLayout, m: number, n: number, k: number) => {
    const key = shapeKey(layout, m, n, k);
    const s = shapes.get(key) ?? { layout, m, n, k, uses: 0 };
    s.uses++;
    shapes.set(key, s);
  };
  for (const node of graph.nodes) {
    if (node.op !== "linear") continue;
    const [x, w] = node.inputs as [typeof node.inputs[0], typeof node.inputs[0]];
    const batch = x!.shape[0]!;
    const [out, inF] = [w!.shape[0]!, w!.shape[1]!];
    add("nt", batch, out, inF);
    add("tn", out, inF, batch);
    if (x!.kind !== "input") add("nn", batch, inF, out);
  }
  return [...shapes.values()];
}

/** FLOP of the matmuls of one training step: 2·M·N·K per product, times its uses. */
export function stepFlop(shapes: readonly Shape[]): number {
  return shapes.reduce((f, s) => f + 2 * s.m * s.n * s.k * s.uses, 0);
}
