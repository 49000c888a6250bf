/**
 * Typed bindings of the activation entry points in `wgsl/activation.wgsl`: y = f(x) and
 * dx = dy·f'(x) (optionally accumulated), elementwise. Each returns a {@link Dispatch} made once
 * (pipeline, bind group, uniform parameters) to be encoded every step. Buffers may be whole
 * buffers or ranges of one ({@link BufferRef}).
 *
 * @module
 */

import {
  type BufferRef,
  checkBuffers,
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import activationSource from "../../wgsl/activation.wgsl" with { type: "text" };
import { type Activation, activationId } from "./activation_ids.ts";

export { type Activation, activationId, ACTIVATIONS } from "./activation_ids.ts";

/** `wgsl/activation.wgsl` compiled as a kernel (library functions plus its entry points). */
export const ACTIVATION_KERNEL: KernelSource = wgsl("activation", activationSource);

/** Arguments of {@link activationForward}. */
export interface ActivationForwardArgs {
  /** Pre-activation, n values of type `storage`. */
  x: BufferRef;
  /** Output f(x), n values of type `storage`; must lie in another buffer than `x`. */
  y: BufferRef;
  n: number;
  activation: Activation;
  /** The values' storage type (x and y); default f32. f(x) is computed in f32 either way. */
  storage?: Storage;
  label?: string;
}

/** Arguments of {@link activationBackward}. */
export interface ActivationBackwardArgs {
  /** The saved pre-activation of the forward pass, n values of type `storage`. */
  x: BufferRef;
  /** Gradient with respect to the activation's output, n float32 values. */
  dy: BufferRef;
  /** Gradient with respect to x, n float32 values; in another buffer than `x` and `dy`. */
  dx: BufferRef;
  n: number;
  activation: Activation;
  /** dx += dy·f'(x) instead of dx = dy·f'(x) (gradient accumulation). */
  accumulate?: boolean;
  /** x's storage type; default f32. Gradients are f32. */
  storage?: Storage;
  label?: string;
}

/** y[i] = f(x[i]) over n values. */
export function activationForward(
  kernels: KernelCache,
  args: ActivationForwardArgs,
): Promise<Dispatch> {
  const label = args.label ?? `activation.forward ${args.activation}`;
  const id = activationId(args.activation);
  const type = args.storage ?? "f32";
  checkArgs(label, args.n, { x: [args.x, type] }, { y: [args.y, type] });
  const params = kernels.gpu.uniform(`${label} params`, packUniform([["u32", args.n]]));
  return kernels.dispatch({
    kernel: ACTIVATION_KERNEL,
    entry: "forward",
    storage: { X_T: type },
    constants: { ACT: id },
    bindings: [args.x, args.y, params],
    workgroups: grid(args.n, 256),
    label,
  });
}

/** dx[i] = dy[i]·f'(x[i]) (or += with `accumulate`) over n values. */
export function activationBackward(
  kernels: KernelCache,
  args: ActivationBackwardArgs,
): Promise<Dispatch> {
  const label = args.label ?? `activation.backward ${args.activation}`;
  const id = activationId(args.activation);
  const type = args.storage ?? "f32";
  checkArgs(label, args.n, { x: [args.x, type], dy: [args.dy, "f32"] }, { dx: [args.dx, "f32"] });
  const params = kernels.gpu.uniform(`${label} params`, packUniform([["u32", args.n]]));
  return kernels.dispatch({
    kernel: ACTIVATION_KERNEL,
    entry: "backward",
    storage: { X_T: type },
    constants: { ACT: id, ACCUMULATE: args.accumulate ?? false },
    bindings: [args.x, args.dy, args.dx, params],
    workgroups: grid(args.n, 256),
    label,
  });
}

/**
 * Fails with the buffer's name and sizes when n is not a count or a buffer holds fewer values, and
 * when the written buffer is also read: WebGPU forbids one buffer (even disjoint ranges of it) bound
 * both writable and read-only in a dispatch.
 */
function checkArgs(
  label: string,
  n: number,
  read: Record<string, [BufferRef, Storage]>,
  written: Record<string, [BufferRef, Storage]>,
): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xFFFFFFFF) {
    throw new RangeError(`${label}: n must be an integer in [0, 2^32), got ${n}`);
  }
  const all = { ...read, ...written };
  checkBuffers(
    label,
    Object.fromEntries(Object.entries(all).map(([k, [ref, type]]) => [k, [ref, n, type]])),
  );
  const bufferOf = (ref: BufferRef) => ref instanceof GPUBuffer ? ref : ref.buffer;
  for (const [wName, [w]] of Object.entries(written)) {
    for (const [rName, [r]] of Object.entries(read)) {
      if (bufferOf(w) === bufferOf(r)) {
        throw new RangeError(
          `${label}: buffer "${
            bufferOf(w).label
          }" is bound as ${wName} (written) and ${rName} (read)`,
        );
      }
    }
  }
}
