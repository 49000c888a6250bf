/**
 * Typed bindings of the ceiling probes `wgsl/fma_peak.wgsl` (arithmetic) and `wgsl/copy.wgsl`
 * (bandwidth) that `deno task bench` measures every kernel against.
 *
 * @module
 */

import {
  type Dispatch,
  grid,
  type KernelCache,
  type KernelSource,
  packUniform,
  type Storage,
  wgsl,
} from "../gpu/kernels.ts";
import fmaSource from "../../wgsl/fma_peak.wgsl" with { type: "text" };
import copySource from "../../wgsl/copy.wgsl" with { type: "text" };

/** `wgsl/fma_peak.wgsl`. */
export const FMA_PEAK_KERNEL: KernelSource = wgsl("fma_peak", fmaSource);
/** `wgsl/copy.wgsl`. */
export const COPY_KERNEL: KernelSource = wgsl("copy", copySource);

/** Independent vec4 FMA chains per invocation in `wgsl/fma_peak.wgsl`. */
export const FMA_CHAINS = 8;

/** FLOP of one FMA-probe dispatch: 2 per FMA, 4 lanes, {@link FMA_CHAINS} chains. */
export function fmaFlops(invocations: number, iterations: number): number {
  return 2 * 4 * FMA_CHAINS * invocations * iterations;
}

/**
 * The FMA probe over `invocations` invocations of `iterations` steps, computing in `precision`
 * (default f32; f16 needs `shader-f16`). `out` holds f32 sums either way.
 */
export function fmaPeak(
  kernels: KernelCache,
  args: {
    out: GPUBuffer;
    invocations: number;
    iterations: number;
    b: number;
    c: number;
    precision?: Storage;
  },
): Promise<Dispatch> {
  if (args.out.size < args.invocations * 4) {
    throw new RangeError(
      `fma_peak: buffer "${args.out.label}" holds ${args.out.size} bytes, needs ${
        args.invocations * 4
      }`,
    );
  }
  const params = kernels.gpu.uniform(
    "fma_peak params",
    packUniform([["u32", args.invocations], ["u32", args.iterations], ["f32", args.b], [
      "f32",
      args.c,
    ]]),
  );
  return kernels.dispatch({
    kernel: FMA_PEAK_KERNEL,
    storage: { V_T: args.precision ?? "f32" },
    bindings: [args.out, params],
    workgroups: grid(args.invocations, 256),
    label: `fma_peak ${args.precision ?? "f32"}`,
  });
}

/** Copies `vec4s` vec4 values (16·vec4s bytes) from `x` to `out`. */
export function copy(
  kernels: KernelCache,
  args: { x: GPUBuffer; out: GPUBuffer; vec4s: number },
): Promise<Dispatch> {
  for (const b of [args.x, args.out]) {
    if (b.size < args.vec4s * 16) {
      throw new RangeError(
        `copy: buffer "${b.label}" holds ${b.size} bytes, needs ${args.vec4s * 16}`,
      );
    }
  }
  const params = kernels.gpu.uniform("copy params", packUniform([["u32", args.vec4s]]));
  return kernels.dispatch({
    kernel: COPY_KERNEL,
    bindings: [args.x, args.out, params],
    workgroups: grid(args.vec4s, 256),
    label: "copy",
  });
}
