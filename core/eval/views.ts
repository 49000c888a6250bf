/**
 * The views of test-time augmentation: the image itself, and with `flip` its mirror image, with
 * `crop` its crops shifted by `shift` pixels up, down, left and right (zero fill, as the training
 * crop's padding), and with both every crop of both. The logits of the views are averaged.
 * Scaling MLPs' `finetune.py` (algorithms.md §1.5) instead averages softmax probabilities over 100
 * random training-augmented views; fixed views make the result deterministic and cost at most ten
 * forward passes per batch.
 *
 * @module
 */

import { IDENTITY_VIEW, type ImageView } from "../ops/image_view.ts";

/** The augmentations test-time augmentation knows. */
export const TTA_KINDS = ["flip", "crop"] as const;

/** One of {@link TTA_KINDS}. */
export type TtaKind = (typeof TTA_KINDS)[number];

/** Parses "flip,crop" (or "none"), naming the flag and the known kinds on a bad one. */
export function parseTta(text: string, flag = "--tta"): TtaKind[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "none");
  for (const p of parts) {
    if (!(TTA_KINDS as readonly string[]).includes(p)) {
      throw new RangeError(
        `${flag}: unknown augmentation "${p}"; known are ${
          TTA_KINDS.map((k) => `"${k}"`).join(", ")
        } (comma-separated), or "none"`,
      );
    }
  }
  return [...new Set(parts as TtaKind[])];
}

/** The views of the kinds: the identity first; no kinds is the identity alone. */
export function ttaViews(kinds: readonly TtaKind[], shift: number): ImageView[] {
  if (!Number.isInteger(shift) || shift < 1) {
    throw new RangeError(`the crop shift must be a whole number of pixels ≥ 1, got ${shift}`);
  }
  const shifts: [number, number][] = [[0, 0]];
  if (kinds.includes("crop")) shifts.push([-shift, 0], [shift, 0], [0, -shift], [0, shift]);
  const flips = kinds.includes("flip") ? [false, true] : [false];
  const views = flips.flatMap((flip) => shifts.map(([dy, dx]) => ({ dy, dx, flip })));
  views[0] = IDENTITY_VIEW;
  return views;
}
