/**
 * Evaluating a trained model: clean metrics with the confusion matrix, per-class and macro F1 and
 * AUROC; FGSM and PGD on the GPU (crafted on the model itself or on another: transfer);
 * test-time augmentation; parameters, FLOPs and inference speed; the robustness chart.
 *
 * @module
 */

export * from "./suite.ts";
export * from "./model.ts";
export * from "./metrics.ts";
export * from "./views.ts";
export * from "./speed.ts";
export * from "./chart.ts";
