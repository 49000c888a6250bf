/**
 * The built-in losses: each adds the model's main loss term (with its per-row correct flags, for
 * the accuracy) on the predictions the model returned. `--loss NAME` chooses; a plugin may bring
 * its own, built from any ops.
 */

import { labelLoss } from "../../core/graph/nn.ts";
import type { LossPlugin } from "../../core/train/registry.ts";

/** `cross-entropy`: softmax cross-entropy over the classes, with `label_smoothing` in training. */
export const crossEntropyLoss: LossPlugin = {
  kind: "loss",
  name: "cross-entropy",
  description: "softmax cross-entropy (label_smoothing, mixup); predictions [batch, classes]",
  defaults: {},
  apply(g, predictions, config) {
    const { loss, correct } = labelLoss(g, "cross-entropy", predictions, {
      smoothing: Number(config.label_smoothing ?? 0),
    });
    g.addLoss(loss, 1, { main: true, name: "cross-entropy", correct });
  },
};

/** `bce`: binary cross-entropy with logits, for two classes and one logit per row. */
export const bceLoss: LossPlugin = {
  kind: "loss",
  name: "bce",
  description: "binary cross-entropy with logits (labels 0/1); predictions [batch, 1]",
  defaults: {},
  outputs(info) {
    if (info.classes !== 2) {
      throw new RangeError(`loss "bce" is for two classes; this dataset has ${info.classes}`);
    }
    return 1;
  },
  apply(g, predictions) {
    const { loss, correct } = labelLoss(g, "bce", predictions);
    g.addLoss(loss, 1, { main: true, name: "bce", correct });
  },
};

/** `mse`: mean squared error against one-hot labels. */
export const mseLoss: LossPlugin = {
  kind: "loss",
  name: "mse",
  description: "mean squared error against one-hot labels; predictions [batch, classes]",
  defaults: {},
  apply(g, predictions) {
    const { loss, correct } = labelLoss(g, "mse", predictions);
    g.addLoss(loss, 1, { main: true, name: "mse", correct });
  },
};

/** Every built-in loss. */
export const LOSSES: LossPlugin[] = [crossEntropyLoss, bceLoss, mseLoss];
