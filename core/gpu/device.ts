/**
 * The WebGPU device layer: one adapter and device with the adapter's maximum limits, a report of
 * what the adapter is, and errors that surface instead of hanging.
 *
 * Every WebGPU error reaches the caller as a {@link GpuError}: creation calls made through
 * {@link Gpu.scoped} throw at once with the label of what failed; errors raised while the GPU runs
 * (uncaptured errors, device loss) are remembered and thrown by the next {@link Gpu.read} or
 * {@link Gpu.check}, so a failed step can never be mistaken for a result.
 *
 * @module
 */

/** An error from the WebGPU layer; the message names the kernel or buffer involved. */
export class GpuError extends Error {
  /** Always `"GpuError"`. */
  override name = "GpuError";
}

/** No WebGPU adapter at all: no GPU driver and no software driver. */
export class NoAdapterError extends GpuError {
  /** Always `"NoAdapterError"`. */
  override name = "NoAdapterError";
}

/** The limits this project relies on, requested at the adapter's maximum. */
export const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
] as const;

/** The element type a storage buffer holds: f32, or f16 (needs the `shader-f16` feature). */
export type Storage = "f32" | "f16";

/** Bytes per element of a storage type. */
export function storageBytes(type: Storage = "f32"): number {
  return type === "f16" ? 2 : 4;
}

/** `values` as the typed array a buffer of `type` holds (f16 rounds to nearest even). */
export function storageArray(
  values: ArrayLike<number>,
  type: Storage,
): Float32Array | Float16Array {
  return type === "f16" ? Float16Array.from(values) : Float32Array.from(values);
}

/** Optional features used when the adapter has them. */
export const OPTIONAL_FEATURES = ["shader-f16", "timestamp-query", "subgroups"] as const;

/** What the adapter is and what the device was given. */
export interface AdapterReport {
  /** The adapter's description, e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** The adapter's vendor (`adapter.info.vendor`); may be empty. */
  vendor: string;
  /** The adapter's architecture (`adapter.info.architecture`); may be empty. */
  architecture: string;
  /** True for a software adapter such as llvmpipe (`adapter.info.isFallbackAdapter`). */
  fallback: boolean;
  /** Optional features enabled on the device. */
  features: string[];
  /** The device's limits (at the adapter's maximum for {@link REQUESTED_LIMITS}). */
  limits: Record<string, number>;
}

/** Options for {@link Gpu.open}. */
export interface GpuOptions {
  /** Which adapter to request; default `"high-performance"`. */
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even when present (to test fallback paths). */
  disableFeatures?: string[];
  /** The WebGPU entry point; default `navigator.gpu` (tests inject one). */
  gpu?: Pick<GPU, "requestAdapter">;
}

const INSTALL_HINT =
  "No WebGPU adapter was found. Install a GPU driver with Vulkan, Metal or D3D12 support, or for " +
  "the software adapter on Debian/Ubuntu: `apt-get install -y mesa-vulkan-drivers`. " +
  "DENO_WEBGPU_BACKEND=vulkan|gl selects a backend.";

/**
 * Points `XDG_RUNTIME_DIR` at a private folder when it is unset or not a folder (Linux): Mesa's
 * Vulkan loader prints an error for every adapter request without one. The folder is one per user
 * in the temporary directory, made once with mode 0700. Returns the folder in use.
 */
export function ensureRuntimeDir(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const current = Deno.env.get("XDG_RUNTIME_DIR");
  if (current) {
    try {
      if (Deno.statSync(current).isDirectory) return current;
    } catch {
      // Not there: make our own below.
    }
  }
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  const dir = `${tmp}/webgpu-trainer-runtime-${Deno.uid?.() ?? "user"}`;
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) return undefined;
  }
  Deno.env.set("XDG_RUNTIME_DIR", dir);
  return dir;
}

/** What every scope of one device shares: errors seen while the GPU ran, and live buffers. */
interface DeviceState {
  failure: GpuError | undefined;
  destroyed: boolean;
  /** Bytes of every buffer made through any scope and not yet destroyed. */
  bytes: number;
  buffers: number;
}

/**
 * One adapter and device, with helpers for buffers, error scopes and readback.
 *
 * Every buffer made through a `Gpu` belongs to it: {@link Gpu.scope} gives a child that shares
 * the device and owns what is made through it, and its {@link Gpu.dispose} destroys all of that
 * (a run's scope is disposed on every path out of the run). {@link Gpu.allocatedBytes} counts the
 * bytes of the device's buffers that are still alive, in every scope.
 */
export class Gpu {
  /** The adapter the device was requested from. */
  readonly adapter: GPUAdapter;
  /** The device, shared by every scope. */
  readonly device: GPUDevice;
  /** What the adapter is and what the device was given. */
  readonly report: AdapterReport;
  /** What this scope is for, in messages. */
  readonly label: string;
  readonly #state: DeviceState;
  readonly #parent: Gpu | undefined;
  readonly #owned = new Set<GPUBuffer>();
  readonly #children = new Set<Gpu>();
  #disposed = false;

  private constructor(
    adapter: GPUAdapter,
    device: GPUDevice,
    report: AdapterReport,
    state: DeviceState,
    label: string,
    parent?: Gpu,
  ) {
    this.adapter = adapter;
    this.device = device;
    this.report = report;
    this.#state = state;
    this.label = label;
    this.#parent = parent;
    if (parent) return;
    device.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      state.failure ??= new GpuError(`WebGPU error while the GPU ran: ${error.message}`);
    });
    device.lost.then((info) => {
      if (state.destroyed) return;
      state.failure ??= new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
  }

  /**
   * A child scope on the same device: buffers made through it are its own, and its
   * {@link dispose} destroys them (and those of its own children), leaving the parent's.
   */
  scope(label: string): Gpu {
    if (this.#disposed) {
      throw new GpuError(`scope "${this.label}" is disposed; cannot open "${label}"`);
    }
    const child = new Gpu(this.adapter, this.device, this.report, this.#state, label, this);
    this.#children.add(child);
    return child;
  }

  /** Bytes of the device's buffers still alive, made through any scope. */
  get allocatedBytes(): number {
    return this.#state.bytes;
  }

  /** Number of the device's buffers still alive. */
  get allocatedBuffers(): number {
    return this.#state.buffers;
  }

  /** Bytes of the buffers this scope (and its children) still own. */
  get ownedBytes(): number {
    let n = 0;
    for (const b of this.#owned) n += b.size;
    for (const c of this.#children) n += c.ownedBytes;
    return n;
  }

  /**
   * Destroys every buffer this scope and its children made. A child leaves its parent; the root
   * scope (from {@link Gpu.open}) destroys the device too. Safe to call twice.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const c of [...this.#children]) c.dispose();
    for (const b of [...this.#owned]) b.destroy();
    if (this.#parent) this.#parent.#children.delete(this);
    if (!this.#parent) {
      this.#state.destroyed = true;
      this.device.destroy();
    }
  }

  /** Takes ownership of a buffer made on this device: counted, and destroyed with the scope. */
  #own(buffer: GPUBuffer): GPUBuffer {
    if (this.#disposed) {
      buffer.destroy();
      throw new GpuError(`scope "${this.label}" is disposed; buffer "${buffer.label}" not made`);
    }
    const state = this.#state;
    const owned = this.#owned;
    const size = buffer.size;
    state.bytes += size;
    state.buffers += 1;
    owned.add(buffer);
    const destroy = buffer.destroy.bind(buffer);
    let alive = true;
    buffer.destroy = () => {
      if (alive) {
        alive = false;
        state.bytes -= size;
        state.buffers -= 1;
        owned.delete(buffer);
      }
      destroy();
    };
    return buffer;
  }

  /** Requests a high-performance adapter and a device with its maximum limits. */
  static async open(options: GpuOptions = {}): Promise<Gpu> {
    ensureRuntimeDir();
    const entry = options.gpu ??
      (typeof navigator !== "undefined" && "gpu" in navigator ? navigator.gpu : undefined);
    if (!entry) {
      throw new NoAdapterError(`navigator.gpu is missing in this runtime. ${INSTALL_HINT}`);
    }
    const adapter = await entry.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) throw new NoAdapterError(INSTALL_HINT);
    const requiredLimits: Record<string, number> = {};
    for (const name of REQUESTED_LIMITS) {
      const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
      if (typeof value === "number") requiredLimits[name] = value;
    }
    const disabled = new Set(options.disableFeatures ?? []);
    const requiredFeatures = OPTIONAL_FEATURES.filter((f) =>
      adapter.features.has(f) && !disabled.has(f)
    ) as GPUFeatureName[];
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const limits: Record<string, number> = {};
    for (const name of REQUESTED_LIMITS) {
      limits[name] = (device.limits as unknown as Record<string, number>)[name] ?? 0;
    }
    const report: AdapterReport = {
      description: info.description || info.device || "unknown adapter",
      vendor: info.vendor,
      architecture: info.architecture,
      fallback: info.isFallbackAdapter === true,
      features: [...device.features].filter((f) =>
        (OPTIONAL_FEATURES as readonly string[]).includes(f)
      ).sort(),
      limits,
    };
    const state = { failure: undefined, destroyed: false, bytes: 0, buffers: 0 };
    return new Gpu(adapter, device, report, state, "device");
  }

  /** Whether the device has an optional feature enabled. */
  has(feature: string): boolean {
    return this.device.features.has(feature as GPUFeatureName);
  }

  /**
   * Runs `fn` inside validation, out-of-memory and internal error scopes and throws a
   * {@link GpuError} naming `label` if any of them caught an error.
   */
  async scoped<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope("internal");
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    let result: T | undefined;
    let thrown: unknown;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    const errors = [
      await this.device.popErrorScope(),
      await this.device.popErrorScope(),
      await this.device.popErrorScope(),
    ].filter((e): e is GPUError => e !== null);
    if (thrown) throw thrown;
    if (errors.length > 0) {
      throw new GpuError(`${label}: ${errors.map((e) => e.message).join("\n")}`);
    }
    return result as T;
  }

  /** Throws the first error raised while the GPU ran, if any. */
  check(): void {
    if (this.#state.failure) throw this.#state.failure;
  }

  /**
   * Creates a buffer, checking its size against the device's limits first so an oversized request
   * fails with the sizes in the message instead of a validation error later.
   */
  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    const maxBuffer = this.report.limits.maxBufferSize ?? Infinity;
    if (padded > maxBuffer) {
      throw new GpuError(
        `buffer "${label}" needs ${padded} bytes but the adapter allows at most ${maxBuffer} (maxBufferSize)`,
      );
    }
    const maxBinding = this.report.limits.maxStorageBufferBindingSize ?? Infinity;
    if ((usage & GPUBufferUsage.STORAGE) !== 0 && padded > maxBinding) {
      throw new GpuError(
        `storage buffer "${label}" needs ${padded} bytes but the adapter binds at most ${maxBinding} (maxStorageBufferBindingSize)`,
      );
    }
    return this.#own(this.device.createBuffer({ label, size: padded, usage }));
  }

  /**
   * A storage buffer usable as a kernel binding and as a copy source and destination, filled with
   * `data` when given, or `size` zero bytes.
   */
  storage(
    label: string,
    data: ArrayBufferView | number,
    extraUsage: GPUBufferUsageFlags = 0,
  ): GPUBuffer {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST |
      extraUsage;
    if (typeof data === "number") return this.createBuffer(label, data, usage);
    const buffer = this.createBuffer(label, data.byteLength, usage);
    this.write(buffer, data);
    return buffer;
  }

  /** A uniform buffer holding `data` (padded to 16 bytes). */
  uniform(label: string, data: ArrayBufferView | ArrayBuffer): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    const buffer = this.createBuffer(label, size, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.write(buffer, bytes);
    return buffer;
  }

  /** Writes `data` into `buffer` at `offset` through the queue (padded to 4 bytes). */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // A copy when padding is needed or the source is shared memory, which WebGPU cannot read.
    const bytes = view.byteLength % 4 === 0 && view.buffer instanceof ArrayBuffer
      ? view as Uint8Array<ArrayBuffer>
      : (() => {
        const padded = new Uint8Array(Math.ceil(view.byteLength / 4) * 4);
        padded.set(view);
        return padded;
      })();
    this.device.queue.writeBuffer(buffer, offset, bytes);
  }

  /** Submits command buffers, failing fast if the GPU already reported an error. */
  submit(commands: GPUCommandBuffer[]): void {
    this.check();
    this.device.queue.submit(commands);
  }

  /**
   * Copies `byteLength` bytes of `buffer` from `offset` back to the CPU. Waits for the GPU (about
   * 10 ms in Deno): for tests and occasional reads, never inside a training step.
   */
  async read(buffer: GPUBuffer, byteLength = buffer.size, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      label: `readback of ${buffer.label}`,
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      await this.scoped(`reading buffer "${buffer.label}"`, () => {
        const encoder = this.device.createCommandEncoder({ label: `read ${buffer.label}` });
        encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
        this.submit([encoder.finish()]);
      });
      await staging.mapAsync(GPUMapMode.READ);
      this.check();
      return staging.getMappedRange().slice(0, byteLength);
    } finally {
      staging.destroy();
    }
  }

  /** Reads a buffer as float32 values. */
  async readF32(buffer: GPUBuffer, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4));
  }

  /** Reads `count` values stored as `type` (f16 widened exactly) as float32. */
  async readValues(buffer: GPUBuffer, count: number, type: Storage = "f32"): Promise<Float32Array> {
    if (type === "f32") return await this.readF32(buffer, count);
    return Float32Array.from(new Float16Array(await this.read(buffer, count * 2)));
  }

  /** Reads a buffer as uint32 values. */
  async readU32(buffer: GPUBuffer, count?: number): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, (count ?? buffer.size / 4) * 4));
  }

  /** Destroys the device and everything on it (the root scope's {@link dispose}). */
  destroy(): void {
    if (this.#parent) this.#parent.destroy();
    else this.dispose();
  }
}
