/**
 * The flat parameter layout: every parameter is a segment of one buffer (as are gradients and
 * each optimizer state), each segment starting on a 256-byte boundary so it can be bound as a
 * storage-buffer range. Trainable parameters come first: gradients and optimizer state cover only
 * that prefix, so a frozen parameter has none. Initialisation runs on the CPU from the run's seed
 * in declaration order (whatever is frozen), so a run is reproducible and matches PyTorch's
 * distributions.
 *
 * @module
 */

import type { Param, Tensor } from "./graph.ts";
import type { BufferRange } from "../gpu/kernels.ts";
import { type Storage, storageBytes } from "../gpu/device.ts";

/**
 * Elements per alignment unit: 256 bytes of float32 (WebGPU's storage offset alignment), or 128
 * elements when an f16 copy is laid out alike (precision "f16"): 256 bytes of f16.
 */
export const PARAM_ALIGN = { f32: 64, f16: 128 } as const;

/** One parameter's place in the flat buffers. */
export interface Segment {
  readonly param: Param;
  /** Offset in elements. */
  readonly offset: number;
  readonly size: number;
}

/** Where each parameter lives in the flat buffers. */
export class ParamLayout {
  /** Every segment: the trainable ones first, then the frozen ones. */
  readonly segments: readonly Segment[];
  /** The trainable segments: the prefix that gradients and optimizer state cover. */
  readonly trainableSegments: readonly Segment[];
  /** Elements in the flat buffer, padding included. */
  readonly total: number;
  /** Elements of the trainable prefix, padding included (the gradient buffer's length). */
  readonly trainableTotal: number;
  readonly #declared: readonly Param[];
  #byTensor = new Map<Tensor, Segment>();

  /** Elements per alignment unit: {@link PARAM_ALIGN}. */
  readonly align: number;

  /**
   * `align` is {@link PARAM_ALIGN}`.f16` when an f16 copy of the parameters is bound too;
   * `trainable` says which parameters get gradients (default all).
   */
  constructor(
    params: readonly Param[],
    align: number = PARAM_ALIGN.f32,
    trainable: (p: Param) => boolean = () => true,
  ) {
    this.align = align;
    this.#declared = params;
    let offset = 0;
    const segments: Segment[] = [];
    const place = (param: Param) => {
      const segment = { param, offset, size: param.size };
      segments.push(segment);
      this.#byTensor.set(param.tensor, segment);
      offset += Math.ceil(param.size / align) * align;
    };
    params.filter(trainable).forEach(place);
    const trainableCount = segments.length;
    this.trainableTotal = offset;
    params.filter((p) => !trainable(p)).forEach(place);
    this.segments = segments;
    this.trainableSegments = segments.slice(0, trainableCount);
    this.total = Math.max(offset, align);
  }

  /** Whether a parameter is in the trainable prefix. */
  isTrainable(t: Tensor): boolean {
    const s = this.segment(t);
    return s.offset < this.trainableTotal;
  }

  /** The segment of a parameter tensor. */
  segment(t: Tensor): Segment {
    const s = this.#byTensor.get(t);
    if (!s) throw new RangeError(`tensor "${t.name}" is not a parameter of this layout`);
    return s;
  }

  /** The byte range of a parameter within a flat buffer of `type` laid out like this. */
  range(buffer: GPUBuffer, t: Tensor, type: Storage = "f32"): BufferRange {
    const s = this.segment(t);
    const bytes = storageBytes(type);
    // Bindings are whole 4-byte words: an odd f16 segment takes its (zero) padding value along.
    return { buffer, offset: s.offset * bytes, size: Math.ceil((s.size * bytes) / 4) * 4 };
  }

  /** Initial values of every parameter from `random` (uniform in [0, 1)); padding stays 0. */
  initialValues(random: () => number): Float32Array {
    const values = new Float32Array(this.total);
    for (const param of this.#declared) {
      const { offset, size } = this.segment(param.tensor);
      const view = values.subarray(offset, offset + size);
      const init = param.init;
      switch (init.kind) {
        case "zeros":
          break;
        case "ones":
          view.fill(1);
          break;
        case "uniform":
          for (let i = 0; i < size; i++) view[i] = (2 * random() - 1) * init.bound;
          break;
        case "normal":
          for (let i = 0; i < size; i += 2) {
            const r = Math.sqrt(-2 * Math.log(1 - random()));
            const theta = 2 * Math.PI * random();
            view[i] = init.std * r * Math.cos(theta);
            if (i + 1 < size) view[i + 1] = init.std * r * Math.sin(theta);
          }
          break;
      }
    }
    return values;
  }
}
