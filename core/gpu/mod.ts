/**
 * The device layer: adapter and device with owned scopes and allocation accounting, the kernel loader and pipeline cache, the activation pool, step counters and metric readback.
 *
 * @module
 */

export * from "./device.ts";
export * from "./kernels.ts";
export * from "./pool.ts";
export * from "./counters.ts";
export * from "./metrics.ts";
