/**
 * The drop_path op (stochastic depth, algorithms.md §9.7): a residual branch kept or dropped per
 * sample in training, scaled by 1/(1−p) when kept; the identity in evaluation. Its saved tensor
 * holds the per-row scales the forward drew, which the backward multiplies the gradient by.
 *
 * @module
 */

import { scale } from "../ops/elementwise.ts";
import { dropPathBackward, dropPathForward, dropPathScales } from "../ops/drop_path.ts";
import type { OpRule } from "./rules.ts";
import { asBuffer, nodeName, sameStorage } from "./rule_helpers.ts";

/** drop_path: y_r = x_r · k_r/(1−p), k_r ~ Bernoulli(1−p) per row r of the batch axis. */
export const DROP_PATH_RULE: OpRule = {
  f16: true,
  async forward(ctx, node) {
    const x = node.inputs[0]!;
    const scales = node.saved[0]!;
    const type = sameStorage(ctx, node, [x, node.output]);
    const rows = x.shape[0]!;
    const shape = { rows, cols: x.size / rows, p: node.attrs.p as number };
    const name = nodeName(node);
    if (!ctx.training) {
      return [
        await scale(ctx.kernels, {
          x: asBuffer(ctx.value(x), "drop_path input"),
          out: asBuffer(ctx.value(node.output), "drop_path output"),
          n: x.size,
          alpha: 1,
          storage: { x: type, out: type },
        }),
      ];
    }
    return [
      await dropPathScales(ctx.kernels, {
        ...shape,
        scales: asBuffer(ctx.value(scales), "drop_path scales"),
        ...ctx.random(node),
        label: `${name} mask`,
      }),
      await dropPathForward(ctx.kernels, {
        ...shape,
        x: ctx.value(x),
        y: ctx.value(node.output),
        scales: ctx.value(scales),
        storage: type,
        label: `${name} forward`,
      }),
    ];
  },
  async backward(ctx, node, dy) {
    const x = node.inputs[0]!;
    if (!ctx.training) return await ctx.passGrad(x, dy);
    const dx = ctx.grad(x);
    if (!dx) return [];
    const rows = x.shape[0]!;
    return [
      await dropPathBackward(ctx.kernels, {
        rows,
        cols: x.size / rows,
        p: node.attrs.p as number,
        dy,
        dx: dx.ref,
        scales: ctx.value(node.saved[0]!),
        accumulate: dx.accumulate,
        label: `${nodeName(node)} backward`,
      }),
    ];
  },
};
