/**
 * The config keys of training-time image augmentation (done on the GPU inside the gather, see
 * `wgsl/gather.wgsl`) and their parsing. Image dataset plugins declare {@link AUGMENT_DEFAULTS}
 * among their keys; evaluation never augments.
 *
 * @module
 */

import type { GatherAugment } from "../ops/gather.ts";
import type { Config, DatasetInfo } from "./registry.ts";

/**
 * The augmentation keys with their defaults, everything off: `crop_padding` (random crop with
 * that much zero padding per side), `hflip` (probability of a horizontal flip), `crop_scale`
 * ("lo,hi": random resized crop of that area fraction; "" = off) and `crop_ratio` (its aspect
 * ratio range, default "3/4,4/3").
 */
export const AUGMENT_DEFAULTS: Config = {
  crop_padding: 0,
  hflip: 0,
  crop_scale: "",
  crop_ratio: "",
};

/** A number or a fraction ("3/4"). */
function parseNumber(text: string): number {
  const parts = text.trim().split("/");
  if (parts.length === 2) return Number(parts[0]) / Number(parts[1]);
  return text.trim() === "" ? NaN : Number(text);
}

/** Parses a "lo,hi" (or "lo hi") range key, naming it on failure. */
export function parseRange(value: unknown, key: string): [number, number] | undefined {
  const text = String(value ?? "").trim();
  if (text === "") return undefined;
  const parts = text.split(/[,\s]+/).map(parseNumber);
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0]! > parts[1]!) {
    throw new RangeError(
      `${key} must be a range "lo,hi" with lo ≤ hi, got ${JSON.stringify(value)}`,
    );
  }
  return [parts[0]!, parts[1]!];
}

/**
 * The augmentation a config asks for, or undefined when it asks for none. Fails naming the key
 * when a value is out of range or the dataset has no image shape to augment.
 */
export function augmentation(
  config: Config,
  info: DatasetInfo,
  seed: number,
  counterIndex: number,
): GatherAugment | undefined {
  const padding = Number(config.crop_padding ?? 0);
  const flip = Number(config.hflip ?? 0);
  const scale = parseRange(config.crop_scale, "crop_scale");
  const ratio = parseRange(config.crop_ratio, "crop_ratio");
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(
      `crop_padding must be an integer ≥ 0, got ${JSON.stringify(config.crop_padding)}`,
    );
  }
  if (!(flip >= 0 && flip <= 1)) {
    throw new RangeError(
      `hflip must be a probability in [0, 1], got ${JSON.stringify(config.hflip)}`,
    );
  }
  if (scale && !(scale[0] > 0 && scale[1] <= 1)) {
    throw new RangeError(`crop_scale must lie in (0, 1], got ${JSON.stringify(config.crop_scale)}`);
  }
  if (ratio && !(ratio[0] > 0)) {
    throw new RangeError(`crop_ratio must be > 0, got ${JSON.stringify(config.crop_ratio)}`);
  }
  if (padding === 0 && flip === 0 && !scale) return undefined;
  const image = info.image;
  if (!image) {
    throw new RangeError(
      "crop_padding, hflip and crop_scale augment images, and this dataset has no image shape",
    );
  }
  return {
    ...image,
    padding,
    flip,
    resized: scale ? { scale, ratio: ratio ?? [3 / 4, 4 / 3] } : undefined,
    seed,
    counterIndex,
  };
}
