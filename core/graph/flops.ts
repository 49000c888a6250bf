/**
 * The forward cost of a graph in floating-point operations: each node's rule says its own
 * (`OpRule.flops`: a matmul's 2·M·N·K, a reshape's 0), and a node whose rule does not counts one
 * per output value — the convention of fvcore and thop, where products dominate.
 *
 * @module
 */

import type { Graph } from "./graph.ts";
import type { OpTable } from "./rules.ts";

/** Floating-point operations of one forward pass over the graph's batch. */
export function forwardFlops(graph: Graph, ops: OpTable): number {
  let total = 0;
  for (const node of graph.nodes) {
    const rule = ops.of(node);
    total += rule.flops ? rule.flops(node) : node.output.size;
  }
  return total;
}
