/**
 * The position_encoding op (AUNN, algorithms.md §6.2): the first `words` columns of its input are
 * an absolute position, encoded by `wgsl/position_encoding.wgsl`. Positions are integers, so the
 * op passes no gradient back to its input. Its frequency table is made once per node, in the
 * run's GPU scope, from the float64 frequencies in the node's attributes.
 *
 * @module
 */

import {
  positionEncoding,
  type PositionEncodingKind,
  positionTable,
} from "../ops/position_encoding.ts";
import type { Node } from "./graph.ts";
import type { OpRule } from "./rules.ts";
import { nodeName } from "./rule_helpers.ts";

const tables = new WeakMap<Node, GPUBuffer>();

/** position_encoding: out[r] = encode(x[r, 0 .. words]) (see core/ops/position_encoding.ts). */
export const POSITION_ENCODING_RULE: OpRule = {
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const kind = node.attrs.kind as PositionEncodingKind;
    let table = tables.get(node);
    if (!table) {
      table = ctx.kernels.gpu.storage(
        `${nodeName(node)} frequency table`,
        positionTable(node.attrs.frequencies as number[]),
      );
      tables.set(node, table);
    }
    const stride = x.shape[x.shape.length - 1]!;
    return [
      await positionEncoding(ctx.kernels, {
        x: ctx.value(x),
        out: ctx.value(node.output),
        table,
        rows: x.size / stride,
        stride,
        words: node.attrs.words as number,
        features: node.attrs.features as number,
        kind,
        label: nodeName(node),
      }),
    ];
  },
  backward() {
    return Promise.resolve([]);
  },
};
