/**
 * Metrics beyond accuracy, from what the evaluation read back once per split: per-class precision,
 * recall and F1 and their macro average from the confusion matrix; the area under the ROC curve
 * of binary scores; the loss in bits per token.
 *
 * @module
 */

/** One class's scores (sklearn's `classification_report`). */
export interface ClassMetrics {
  class: number;
  /** TP / (TP + FP); 0 when the class is never predicted (sklearn's zero_division = 0). */
  precision: number;
  /** TP / (TP + FN); 0 when the class has no samples. */
  recall: number;
  /** 2·P·R / (P + R); 0 when both are 0. */
  f1: number;
  /** Samples whose label is the class. */
  support: number;
}

/** Per-class metrics of a confusion matrix `[label][prediction]`. */
export function classMetrics(confusion: readonly (readonly number[])[]): ClassMetrics[] {
  const k = confusion.length;
  return confusion.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((s, v) => s + v, 0);
    let predicted = 0;
    for (let i = 0; i < k; i++) predicted += confusion[i]![c]!;
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { class: c, precision, recall, f1, support };
  });
}

/**
 * The unweighted mean F1 over the classes that occur as a label or a prediction (sklearn's
 * `f1_score(average="macro")` with its default labels); 0 when none does.
 */
export function macroF1(confusion: readonly (readonly number[])[]): number {
  const metrics = classMetrics(confusion);
  const present = metrics.filter((m, c) => m.support > 0 || confusion.some((row) => row[c]! > 0));
  return present.length > 0 ? present.reduce((s, m) => s + m.f1, 0) / present.length : 0;
}

/**
 * The area under the ROC curve of scores for label 1 against label 0: the probability that a
 * positive outranks a negative, ties counting half (the Mann–Whitney statistic, from the ranks
 * of the sorted scores, ties given their mean rank). Undefined (null) without both labels or with
 * a non-finite score.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) if (!Number.isFinite(scores[i]!)) return null;
  order.sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j) / 2 + 1; // mean 1-based rank of the tied run i..j
    for (let t = i; t <= j; t++) {
      if (labels[order[t]!] === 1) {
        positives++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** A mean cross-entropy in nats per token as bits per token. */
export function bitsPerToken(lossNats: number): number {
  return lossNats / Math.LN2;
}
