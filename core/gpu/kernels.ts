/**
 * The kernel loader: WGSL sources (one kernel per `wgsl/<name>.wgsl`, imported as text so that
 * `deno compile` embeds them), `//!include NAME` expansion, storage types (a kernel declares
 * `alias X_T = f32;` for each buffer whose element type may be f16, and a dispatch retargets it),
 * a pipeline cache keyed by kernel, entry point, storage types and `override` constants, and
 * {@link Dispatch} records that are made once and encoded many times.
 *
 * @module
 */

import { type Gpu, GpuError, type Storage, storageBytes } from "./device.ts";
import philoxSource from "../../wgsl/philox.wgsl" with { type: "text" };
import activationSource from "../../wgsl/activation.wgsl" with { type: "text" };
import optimizerSource from "../../wgsl/optimizer_common.wgsl" with { type: "text" };

/** A named WGSL source. `name` is used in error messages and the pipeline cache key. */
export interface KernelSource {
  /** The kernel's name, e.g. the file name without `.wgsl`. */
  readonly name: string;
  /** The WGSL source, before `//!include` expansion and storage retargeting. */
  readonly code: string;
}

/** Names a WGSL source text as a kernel. */
export function wgsl(name: string, code: string): KernelSource {
  return { name, code };
}

/** Sources that kernels may pull in with a `//!include NAME` line. */
const LIBRARY: Record<string, string> = {
  philox: philoxSource,
  activation: activationSource,
  optimizer: optimizerSource,
};

/** Replaces each `//!include NAME` line with the named library source (once per source). */
export function expandIncludes(
  kernel: KernelSource,
  library: Record<string, string> = LIBRARY,
): string {
  const seen = new Set<string>();
  const expand = (code: string, from: string): string =>
    code.replace(/^\s*\/\/!include\s+(\S+)\s*$/gm, (_line, name: string) => {
      const source = library[name];
      if (source === undefined) {
        throw new GpuError(
          `kernel "${from}": //!include ${name} names no library source; known are ${
            Object.keys(library).map((k) => `"${k}"`).join(", ")
          }`,
        );
      }
      if (seen.has(name)) return "";
      seen.add(name);
      return expand(stripEntryPoints(source), name);
    });
  return expand(kernel.code, kernel.name);
}

/** Library files may carry entry points below `//!entry-points`; included copies drop them. */
function stripEntryPoints(code: string): string {
  const marker = code.indexOf("//!entry-points");
  return marker < 0 ? code : code.slice(0, marker);
}

export { type Storage, storageBytes };

/**
 * Storage types of a kernel's buffers, by alias: `{ X_T: "f16" }` turns the kernel's
 * `alias X_T = f32;` into `alias X_T = f16;` (and enables f16). WGSL overrides cannot change a
 * type, so this is the one text edit the loader makes; kernels convert explicitly (`f32(x[i])`,
 * `X_T(v)`), which is the identity in f32, and compute in f32 either way.
 */
export type StorageTypes = Readonly<Record<string, Storage>>;

/** The alias declarations a kernel source retargets: `alias NAME = f32;` at the start of a line. */
function storageAliases(code: string): string[] {
  return [...code.matchAll(/^alias\s+(\w+)\s*=\s*f32\s*;/gm)].map((m) => m[1]!);
}

/**
 * The kernel with its storage aliases retargeted (the same kernel when every type is f32). Fails
 * naming the kernel when an alias is not declared or the device lacks `shader-f16`.
 */
export function withStorage(kernel: KernelSource, storage: StorageTypes, gpu?: Gpu): KernelSource {
  const half = Object.entries(storage).filter(([, t]) => t === "f16").map(([name]) => name);
  const declared = storageAliases(kernel.code);
  for (const [name, type] of Object.entries(storage)) {
    if (type !== "f32" && type !== "f16") {
      throw new GpuError(
        `kernel "${kernel.name}": storage type of ${name} must be "f32" or "f16", got "${type}"`,
      );
    }
    if (!declared.includes(name)) {
      throw new GpuError(
        `kernel "${kernel.name}": storage type given for ${name}, but the kernel declares no \`alias ${name} = f32;\` (it declares ${
          declared.length > 0 ? declared.join(", ") : "none"
        })`,
      );
    }
  }
  if (half.length === 0) return kernel;
  if (gpu && !gpu.has("shader-f16")) {
    throw new GpuError(
      `kernel "${kernel.name}": f16 storage (${
        half.join(", ")
      }) needs the adapter feature "shader-f16", which ${gpu.report.description} lacks; use precision "f32"`,
    );
  }
  let code = kernel.code;
  for (const name of half) {
    code = code.replace(
      new RegExp(`^alias\\s+${name}\\s*=\\s*f32\\s*;`, "m"),
      `alias ${name} = f16;`,
    );
  }
  return { name: kernel.name, code: `enable f16;\n${code}` };
}

/**
 * Fails naming the dispatch, the buffer's role and label when a binding holds fewer than `count`
 * elements of its storage type: `buffers` maps a role to [binding, count, storage type].
 */
export function checkBuffers(
  label: string,
  buffers: Record<string, readonly [BufferRef, number, Storage?] | undefined>,
): void {
  for (const [name, entry] of Object.entries(buffers)) {
    if (!entry) continue;
    const [ref, count, type] = entry;
    const bytes = count * storageBytes(type);
    if (refSize(ref) < bytes) {
      throw new RangeError(
        `${label}: buffer ${name} ("${refLabel(ref)}") holds ${
          refSize(ref)
        } bytes, needs ${count} ${type ?? "f32"} values (${bytes} bytes)`,
      );
    }
  }
}

/** A stable key of storage types: the f16 aliases, sorted. */
function storageKey(storage: StorageTypes): string {
  return Object.keys(storage).filter((k) => storage[k] === "f16").sort().join(",");
}

/** `override` constants of a pipeline. */
export type Constants = Record<string, number | boolean>;

/**
 * A range of a buffer, e.g. one tensor's segment of the flat parameter buffer. `offset` must be a
 * multiple of the device's `minStorageBufferOffsetAlignment` (256 bytes) when bound as storage.
 */
export interface BufferRange {
  /** The buffer the range lies in. */
  buffer: GPUBuffer;
  /** Start of the range, in bytes. */
  offset: number;
  /** Length of the range, in bytes. */
  size: number;
}

/** A whole buffer or a range of one: what typed kernel bindings accept. */
export type BufferRef = GPUBuffer | BufferRange;

/** A buffer bound at one binding: the whole buffer or a range of it. */
export type Binding = BufferRef | { buffer: GPUBuffer; offset?: number; size?: number };

/** The byte size of a buffer or range. */
export function refSize(ref: BufferRef): number {
  return ref instanceof GPUBuffer ? ref.size : ref.size;
}

/** The label of a buffer or of the buffer a range lies in (with the range). */
export function refLabel(ref: BufferRef): string {
  return ref instanceof GPUBuffer
    ? ref.label
    : `${ref.buffer.label}[${ref.offset}..${ref.offset + ref.size}]`;
}

/** Workgroup counts: x, or [x, y, z]. */
export type Workgroups = number | readonly [number, number?, number?];

/** What {@link KernelCache.dispatch} needs to make a {@link Dispatch}. */
export interface DispatchSpec {
  /** The kernel source to compile. */
  kernel: KernelSource;
  /** The entry point; default `main`. */
  entry?: string;
  /** Values of the kernel's `override` constants; default none (the WGSL defaults). */
  constants?: Constants;
  /** Storage types of the kernel's aliases; default all f32 (see {@link StorageTypes}). */
  storage?: StorageTypes;
  /** Group 0, binding i ← bindings[i]. */
  bindings: readonly Binding[];
  /** Workgroup counts to dispatch (see {@link grid}). */
  workgroups: Workgroups;
  /** Names the dispatch in errors and debug labels; default `kernel.entry`. */
  label?: string;
}

/** A pipeline with its bind group and workgroup counts, made once and encoded many times. */
export interface Dispatch {
  /** Names the dispatch in errors and debug labels. */
  readonly label: string;
  /** The compiled compute pipeline (cached per kernel, entry, constants and storage). */
  readonly pipeline: GPUComputePipeline;
  /** Group 0 over the spec's bindings. */
  readonly bindGroup: GPUBindGroup;
  /** Workgroup counts [x, y, z]; a zero count skips the dispatch. */
  readonly workgroups: readonly [number, number, number];
}

/** What every view of one kernel cache shares: compiled modules and pipelines. */
interface CompiledKernels {
  modules: Map<string, Promise<GPUShaderModule>>;
  pipelines: Map<string, Promise<GPUComputePipeline>>;
  library: Record<string, string>;
}

/**
 * Compiles kernels once per (kernel source, entry, constants, storage types) and makes
 * dispatches. {@link KernelCache.withGpu} gives a view over another scope of the device (a run's)
 * that shares the compiled pipelines, while the buffers its dispatches make (uniforms,
 * placeholders) belong to that scope.
 */
export class KernelCache {
  /** The scope the cache's dispatches make their buffers in. */
  readonly gpu: Gpu;
  readonly #compiled: CompiledKernels;

  /**
   * A cache over `gpu`; `library` adds `//!include` sources beside the built-in ones. `compiled` is
   * the shared state of a {@link withGpu} view.
   */
  constructor(gpu: Gpu, library: Record<string, string> = {}, compiled?: CompiledKernels) {
    this.gpu = gpu;
    this.#compiled = compiled ??
      { modules: new Map(), pipelines: new Map(), library: { ...LIBRARY, ...library } };
  }

  /** The same compiled kernels, making buffers through `gpu` (a scope of the same device). */
  withGpu(gpu: Gpu): KernelCache {
    if (gpu.device !== this.gpu.device) {
      throw new GpuError(`KernelCache.withGpu: scope "${gpu.label}" is on another device`);
    }
    return new KernelCache(gpu, {}, this.#compiled);
  }

  /** The compiled module of a kernel; compile errors carry the WGSL compiler's messages. */
  module(kernel: KernelSource): Promise<GPUShaderModule> {
    const key = `${kernel.name}\u0000${kernel.code}`;
    const modules = this.#compiled.modules;
    let module = modules.get(key);
    if (!module) {
      module = this.#compile(kernel);
      modules.set(key, module);
      module.catch(() => modules.delete(key));
    }
    return module;
  }

  async #compile(kernel: KernelSource): Promise<GPUShaderModule> {
    const code = expandIncludes(kernel, this.#compiled.library);
    const device = this.gpu.device;
    let module: GPUShaderModule | undefined;
    try {
      module = await this.gpu.scoped(
        `kernel "${kernel.name}"`,
        () => device.createShaderModule({ label: kernel.name, code }),
      );
    } catch (e) {
      const message = (e as Error).message.replace(`kernel "${kernel.name}": `, "");
      throw new GpuError(`kernel "${kernel.name}" failed to compile:\n${message}`);
    }
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0) {
      throw new GpuError(
        `kernel "${kernel.name}" failed to compile:\n` +
          errors.map((m) => `  ${kernel.name}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`).join(
            "\n",
          ),
      );
    }
    return module;
  }

  /** The compute pipeline of `kernel.entry` with `constants` and `storage` types, cached. */
  pipeline(
    kernel: KernelSource,
    entry = "main",
    constants: Constants = {},
    storage: StorageTypes = {},
  ): Promise<GPUComputePipeline> {
    const constantKey = Object.keys(constants).sort().map((k) => `${k}=${Number(constants[k])}`)
      .join(",");
    // Keyed on the whole source: two kernels of one name and different code are two pipelines.
    const key = `${kernel.name}\u0000${entry}\u0000${constantKey}\u0000${
      storageKey(storage)
    }\u0000${kernel.code}`;
    const pipelines = this.#compiled.pipelines;
    let pipeline = pipelines.get(key);
    if (!pipeline) {
      let source: KernelSource;
      try {
        source = withStorage(kernel, storage, this.gpu);
      } catch (e) {
        return Promise.reject(e);
      }
      pipeline = this.#createPipeline(source, entry, constants);
      pipelines.set(key, pipeline);
      pipeline.catch(() => pipelines.delete(key));
    }
    return pipeline;
  }

  async #createPipeline(
    kernel: KernelSource,
    entry: string,
    constants: Constants,
  ): Promise<GPUComputePipeline> {
    const module = await this.module(kernel);
    const numeric: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) numeric[k] = Number(v);
    const label = `${kernel.name}.${entry}`;
    const what = `pipeline "${label}" (constants ${JSON.stringify(numeric)})`;
    try {
      return await this.gpu.scoped(what, () =>
        this.gpu.device.createComputePipelineAsync({
          label,
          layout: "auto",
          compute: { module, entryPoint: entry, constants: numeric },
        }));
    } catch (e) {
      // A rejected createComputePipelineAsync is a GPUPipelineError, not a scope error.
      if (e instanceof GpuError) throw e;
      throw new GpuError(`${what}: ${(e as Error).message}`);
    }
  }

  /** Makes a {@link Dispatch}: the pipeline, a bind group over `bindings`, and workgroup counts. */
  async dispatch(spec: DispatchSpec): Promise<Dispatch> {
    const entry = spec.entry ?? "main";
    const label = spec.label ?? `${spec.kernel.name}.${entry}`;
    const pipeline = await this.pipeline(spec.kernel, entry, spec.constants, spec.storage);
    const workgroups = normalizeWorkgroups(spec.workgroups, label, this.gpu);
    const bindGroup = await this.gpu.scoped(
      `bind group of "${label}" (bindings ${
        spec.bindings.map((b) => `"${"buffer" in b ? b.buffer.label : (b as GPUBuffer).label}"`)
          .join(", ")
      })`,
      () =>
        this.gpu.device.createBindGroup({
          label,
          layout: pipeline.getBindGroupLayout(0),
          entries: spec.bindings.map((b, binding) => ({
            binding,
            resource: b instanceof GPUBuffer ? { buffer: b } : b,
          })),
        }),
    );
    return { label, pipeline, bindGroup, workgroups };
  }
}

function normalizeWorkgroups(w: Workgroups, label: string, gpu: Gpu): [number, number, number] {
  const [x, y = 1, z = 1] = typeof w === "number" ? [w] : w;
  const max = gpu.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  for (const n of [x, y, z]) {
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new GpuError(
        `dispatch "${label}": workgroup count ${n} is not an integer in [0, ${max}]`,
      );
    }
  }
  return [x, y, z];
}

/**
 * Workgroup counts covering `n` invocations of `workgroupSize` each, split over x and y when more
 * than 65535 workgroups are needed. Kernels recover the linear index as
 * `gid.x + gid.y * num_workgroups.x * WORKGROUP_SIZE` and return when it is ≥ n.
 */
export function grid(n: number, workgroupSize: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / workgroupSize));
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/** Records dispatches into a compute pass, in order. */
export function encode(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) {
    if (d.workgroups[0] * d.workgroups[1] * d.workgroups[2] === 0) continue;
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }
}

/** Encodes dispatches into one compute pass of one command buffer and submits it. */
export function submitDispatches(
  gpu: Gpu,
  dispatches: readonly Dispatch[],
  label = "dispatches",
): void {
  const encoder = gpu.device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  encode(pass, dispatches);
  pass.end();
  gpu.submit([encoder.finish()]);
}

/** A field of a uniform struct: every field is 4 bytes, laid out in order. */
export type UniformField = readonly ["u32" | "i32" | "f32", number];

/** Packs 4-byte fields into an ArrayBuffer padded to 16 bytes, in declaration order. */
export function packUniform(fields: readonly UniformField[]): ArrayBuffer {
  const bytes = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(bytes);
  fields.forEach(([type, value], i) => {
    if (type === "f32") view.setFloat32(i * 4, value, true);
    else if (type === "i32") view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value >>> 0, true);
  });
  return bytes;
}
