/**
 * Typed binding of `wgsl/image_view.wgsl`: a fixed view (identity, horizontal flip, whole-pixel
 * shift with zero fill) of a batch of raw images, normalised into the model's input.
 *
 * @module
 */

import {
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import { normalisationStats } from "./gather.ts";
import src from "../../wgsl/image_view.wgsl" with { type: "text" };

/** `wgsl/image_view.wgsl`. */
export const IMAGE_VIEW_KERNEL: KernelSource = wgsl("image_view", src);

/** A view of an image: shifted by whole pixels (output (y, x) reads (y + dy, x' + dx)), flipped. */
export interface ImageView {
  /** Rows down (positive: the view shows what lies below). */
  dy: number;
  /** Columns right, applied after the flip. */
  dx: number;
  /** Mirror left–right. */
  flip: boolean;
}

/** The view that changes nothing. */
export const IDENTITY_VIEW: ImageView = { dy: 0, dx: 0, flip: false };

/** Arguments of {@link imageView}. */
export interface ImageViewArgs {
  /** The batch's raw values (bytes as 0..255, or f32 features), `batch·features`. */
  raw: GPUBuffer;
  /** The model's input, written in `storage`. */
  out: GPUBuffer;
  batch: number;
  features: number;
  /** Image layout (channel-major); absent: rows of `features` values (identity view only). */
  image?: { channels: number; height: number; width: number };
  /** Mean and std of byte/255 (or of the f32 value): one, one per channel or one per feature. */
  mean: readonly number[];
  std: readonly number[];
  /** The raw values are bytes (0..255); else f32. */
  bytes: boolean;
  view?: ImageView;
  /** out's storage type; default f32. */
  storage?: Storage;
  label?: string;
}

/** out = normalise(view of raw), per row. */
export async function imageView(kernels: KernelCache, args: ImageViewArgs): Promise<Dispatch> {
  const label = args.label ?? "image_view";
  const { batch, features } = args;
  const view = args.view ?? IDENTITY_VIEW;
  for (const [name, v] of [["batch", batch], ["features", features]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${label}: ${name} must be a positive integer, got ${v}`);
    }
  }
  const image = args.image ?? { channels: 1, height: 1, width: features };
  if (image.channels * image.height * image.width !== features) {
    throw new RangeError(
      `${label}: an image of ${image.channels}×${image.height}×${image.width} is not ${features} values`,
    );
  }
  if (!args.image && (view.dy !== 0 || view.dx !== 0 || view.flip)) {
    throw new RangeError(`${label}: only images have shifted or flipped views`);
  }
  if (!Number.isInteger(view.dy) || !Number.isInteger(view.dx)) {
    throw new RangeError(`${label}: shifts must be whole pixels, got (${view.dy}, ${view.dx})`);
  }
  const count = args.mean.length;
  if (count < 1 || args.std.length !== count || features % count !== 0) {
    throw new RangeError(
      `${label}: mean and std need the same count of values dividing ${features}, got ${args.mean.length} and ${args.std.length}`,
    );
  }
  const n = batch * features;
  checkBuffers(label, { raw: [args.raw, n], out: [args.out, n, args.storage] });
  const gpu = kernels.gpu;
  const stats = gpu.storage(
    `${label} normalisation`,
    normalisationStats(args.mean, args.std, !args.bytes),
  );
  const params = gpu.uniform(
    `${label} params`,
    packUniform([
      ["u32", n],
      ["u32", features],
      ["u32", features / count],
      ["u32", count],
      ["u32", image.height],
      ["u32", image.width],
      ["i32", view.dy],
      ["i32", view.dx],
      ["u32", view.flip ? 1 : 0],
      ["u32", 0],
      ["u32", 0],
      ["u32", 0],
    ]),
  );
  return await kernels.dispatch({
    kernel: IMAGE_VIEW_KERNEL,
    entry: "image_view",
    storage: { X_T: args.storage ?? "f32" },
    bindings: [args.raw, args.out, stats, params],
    workgroups: grid(n, 256),
    label,
  });
}
