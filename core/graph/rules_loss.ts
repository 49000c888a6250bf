/**
 * The built-in loss ops against the batch's labels: softmax cross-entropy (label smoothing and
 * mixup in training), binary cross-entropy with logits and mean squared error against one-hot
 * targets. Each is fused: its forward writes the per-row loss (the op's output), the per-row
 * correct flags (its saved tensor, for the accuracy) and, when the pass takes a gradient, the
 * predictions' gradient scaled by the loss term's weight; its backward hands that gradient on.
 * A loss op's output is therefore a loss term and nothing else (the plan checks it).
 *
 * @module
 */

import type { Node, Tensor } from "./graph.ts";
import { softmaxCrossEntropy } from "../ops/softmax_cross_entropy.ts";
import { labelLoss } from "../ops/label_losses.ts";
import type { OpRule, RuleContext } from "./rules.ts";
import { asBuffer, nodeName } from "./rule_helpers.ts";

/** The op names of the fused losses. */
export const LOSS_OPS: ReadonlySet<string> = new Set(["softmax_cross_entropy", "bce", "mse"]);

function lossForward(kind: "softmax_cross_entropy" | "bce" | "mse") {
  return async (ctx: RuleContext, node: Node) => {
    const predictions = node.inputs[0]!;
    const correct = node.saved[0]!;
    const { rows, classes, smoothing } = node.attrs as {
      rows: number;
      classes: number;
      smoothing: number;
    };
    const scale = ctx.lossScale(node.output);
    const common = {
      labels: ctx.batch.labels,
      loss: asBuffer(ctx.value(node.output), "loss"),
      correct: asBuffer(ctx.value(correct), "correct flags"),
      rows,
      classes,
      validRows: ctx.batch.validRows,
      // Evaluation reads the plain targets: no smoothing, no mixup.
      mixup: ctx.training ? ctx.batch.mixup : undefined,
      ...(scale !== 0 ? { grad: ctx.lossGrad(node), gradScale: scale } : { gradScale: 0 }),
      storage: ctx.storage(predictions),
      label: `${kind} (${nodeName(node)}${ctx.training ? "" : ", eval"})`,
    };
    const preds = asBuffer(ctx.value(predictions), "predictions");
    if (kind === "softmax_cross_entropy") {
      return [
        await softmaxCrossEntropy(ctx.kernels, {
          ...common,
          logits: preds,
          labelSmoothing: ctx.training ? smoothing : 0,
        }),
      ];
    }
    return [await labelLoss(ctx.kernels, { ...common, kind, preds })];
  };
}

/** The predictions' gradient was written by the forward, scaled for this term: pass it on. */
function lossBackward(ctx: RuleContext, node: Node): ReturnType<OpRule["backward"]> {
  const predictions: Tensor = node.inputs[0]!;
  return ctx.passGrad(predictions, ctx.lossGrad(node));
}

/** softmax cross-entropy over the last axis of logits [rows, K]. */
export const SOFTMAX_CROSS_ENTROPY_RULE: OpRule = {
  f16: true,
  forward: lossForward("softmax_cross_entropy"),
  backward: lossBackward,
};

/** binary cross-entropy with one logit per row. */
export const BCE_RULE: OpRule = { f16: true, forward: lossForward("bce"), backward: lossBackward };

/** mean squared error against one-hot labels. */
export const MSE_RULE: OpRule = { f16: true, forward: lossForward("mse"), backward: lossBackward };
