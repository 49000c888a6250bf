/**
 * The safetensors checkpoint format, as written and read by Hugging Face's `safetensors`:
 * an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{ "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, "__metadata__": {..} }`
 * padded with spaces to a multiple of 8, then the tensors' little-endian bytes, contiguous,
 * offsets relative to the end of the header.
 *
 * @module
 */

import { dirname } from "node:path";

/** Element types of the format (the names its header uses). */
export type DType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** The typed arrays a tensor's data may be held in. */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * One tensor. `data` is either the array type natural for `dtype` (decoding returns these:
 * F16 and BF16 as `Uint16Array` of raw bits, BOOL as `Uint8Array` of 0/1) or, for any dtype,
 * a `Uint8Array` of the raw little-endian bytes.
 */
export interface Tensor {
  /** The element type, as written in the header (e.g. `F32`). */
  dtype: DType;
  /** Dimensions, outermost first ([] for a scalar). */
  shape: number[];
  /** The elements, row-major, in the form described above. */
  data: TensorData;
}

/** What a file holds: its tensors (in header order of their offsets) and string metadata. */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Record<string, Tensor>;
  /** The header's `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

/** A malformed file or an invalid tensor; the message names the file (or buffer) and field. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

type ArrayCtor = new (buffer: ArrayBuffer, byteOffset?: number, length?: number) => TensorData;

const NATURAL: Readonly<Record<DType, ArrayCtor>> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

// The data section is the platform's memory copied verbatim, which is the format's byte order
// only on little-endian machines (every WebGPU target we know of).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new SafetensorsError("safetensors: this module needs a little-endian platform");
}

function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZE, s);
}

const KNOWN = Object.keys(DTYPE_SIZE).map((d) => `"${d}"`).join(", ");

/** A header plus, per tensor, a byte view of its data and the length the header promised. */
interface Plan {
  header: Uint8Array;
  chunks: { name: string; bytes: Uint8Array; expected: number }[];
}

function plan(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> | undefined,
  where: string,
): Plan {
  const head: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(
          `${where}: __metadata__["${k}"] must be a string, got ${typeof v} ${
            JSON.stringify(v)
          } (JSON.stringify it first)`,
        );
      }
    }
    head.__metadata__ = metadata;
  }
  const chunks: Plan["chunks"] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === "__metadata__") {
      throw new SafetensorsError(`${where}: "__metadata__" is reserved and cannot name a tensor`);
    }
    if (!isDType(t.dtype)) {
      throw new SafetensorsError(
        `${where}: tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)}; known are ${KNOWN}`,
      );
    }
    const count = elementCount(t.shape, `${where}: tensor "${name}"`);
    const ok = t.data instanceof Uint8Array || t.data instanceof NATURAL[t.dtype];
    if (!ok) {
      throw new SafetensorsError(
        `${where}: tensor "${name}": dtype ${t.dtype} needs a ${
          NATURAL[t.dtype].name
        } or raw Uint8Array, got ${t.data.constructor.name}`,
      );
    }
    const expected = count * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new SafetensorsError(
        `${where}: tensor "${name}": shape [${t.shape}] × ${t.dtype} is ${expected} bytes, ` +
          `data has ${t.data.byteLength}`,
      );
    }
    head[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    chunks.push({
      name,
      bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      expected,
    });
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20); // padding with spaces, as the format says
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, chunks };
}

function elementCount(shape: unknown, what: string): number {
  if (!Array.isArray(shape)) {
    throw new SafetensorsError(`${what}: shape must be an array, got ${JSON.stringify(shape)}`);
  }
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        `${what}: shape ${
          JSON.stringify(shape)
        } has a dimension that is not a non-negative integer`,
      );
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) {
    throw new SafetensorsError(`${what}: shape ${JSON.stringify(shape)} is too large`);
  }
  return n;
}

// A buffer or a view whose length shrank (say, its ArrayBuffer was transferred) since the header
// was planned would silently write a short, corrupt file.
function checked(c: Plan["chunks"][number], where: string): Uint8Array {
  if (c.bytes.byteLength !== c.expected) {
    throw new SafetensorsError(
      `${where}: tensor "${c.name}" changed size while being written: ` +
        `${c.bytes.byteLength} bytes, the header says ${c.expected}`,
    );
  }
  return c.bytes;
}

/** Serialises tensors (laid out in the record's order) and string metadata into one buffer. */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const where = "safetensors";
  const p = plan(tensors, metadata, where);
  const total = p.header.length + p.chunks.reduce((s, c) => s + c.expected, 0);
  const out = new Uint8Array(total);
  out.set(p.header, 0);
  let at = p.header.length;
  for (const c of p.chunks) {
    out.set(checked(c, where), at);
    at += c.expected;
  }
  return out;
}

/**
 * Parses and validates a safetensors buffer. Every tensor's data is copied into a fresh array of
 * its natural type (see {@link Tensor}). `source` (a path) is named in error messages.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "safetensors buffer"): Safetensors {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `${source}: truncated: ${bytes.length} bytes, shorter than the 8-byte header length`,
    );
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    throw new SafetensorsError(
      `${source}: header length ${n} exceeds the ${bytes.length - 8} bytes after it ` +
        `(truncated file or bad header length)`,
    );
  }
  const dataStart = 8 + Number(n);
  let head: unknown;
  try {
    head = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)),
    );
  } catch (e) {
    throw new SafetensorsError(
      `${source}: header (${n} bytes) is not UTF-8 JSON: ${(e as Error).message}`,
    );
  }
  if (typeof head !== "object" || head === null || Array.isArray(head)) {
    throw new SafetensorsError(`${source}: header must be a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(head as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new SafetensorsError(`${source}: __metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(
            `${source}: __metadata__["${k}"] must be a string, got ${JSON.stringify(v)}`,
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    const what = `${source}: tensor "${name}"`;
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== "object" || t === null) {
      throw new SafetensorsError(`${what}: entry must be an object`);
    }
    if (!isDType(t.dtype)) {
      throw new SafetensorsError(
        `${what}: unknown dtype ${JSON.stringify(t.dtype)}; known are ${KNOWN}`,
      );
    }
    const count = elementCount(t.shape, what);
    const off = t.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x)) ||
      off[0] < 0 || off[1] < off[0]
    ) {
      throw new SafetensorsError(
        `${what}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${
          JSON.stringify(off)
        }`,
      );
    }
    const [begin, end] = off as [number, number];
    if (count * DTYPE_SIZE[t.dtype] !== end - begin) {
      throw new SafetensorsError(
        `${what}: shape ${JSON.stringify(t.shape)} × ${t.dtype} is ${
          count * DTYPE_SIZE[t.dtype]
        } bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push({ name, dtype: t.dtype, shape: t.shape as number[], begin, end });
  }
  // Like the reference implementation: the tensors must tile the data section exactly, with no
  // gap (hidden bytes) and no overlap (two tensors aliasing the same bytes).
  const dataLength = bytes.length - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  let previous = "the start of the data";
  for (const e of entries) {
    if (e.begin !== expectedBegin) {
      const kind = e.begin < expectedBegin ? "overlaps" : "leaves a gap after";
      throw new SafetensorsError(
        `${source}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] ${kind} ` +
          `${previous} (which ends at ${expectedBegin})`,
      );
    }
    if (e.end > dataLength) {
      throw new SafetensorsError(
        `${source}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] run past the ` +
          `${dataLength} data bytes (truncated file?)`,
      );
    }
    expectedBegin = e.end;
    previous = `tensor "${e.name}"`;
  }
  if (expectedBegin !== dataLength) {
    throw new SafetensorsError(
      `${source}: ${dataLength - expectedBegin} trailing bytes after the last tensor ` +
        `(data section is ${dataLength} bytes, tensors cover ${expectedBegin})`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    // slice() copies into a fresh, 0-aligned ArrayBuffer: offsets in the file need not be
    // aligned to the element size, and the result should not pin the whole file's buffer.
    const copy = bytes.slice(dataStart + e.begin, dataStart + e.end).buffer;
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new NATURAL[e.dtype](copy) };
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file; errors name `path`. */
export async function readSafetensors(path: string): Promise<Safetensors> {
  return decodeSafetensors(await Deno.readFile(path), path);
}

/**
 * Writes a safetensors file so that a crash or error never leaves a half-written `path`: the
 * bytes go to `path.tmp-<pid>`, are fsynced, and the file is renamed over `path`. On an error
 * the temporary file is removed and any previous `path` is left untouched.
 */
export async function writeSafetensorsAtomic(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const p = plan(tensors, metadata, path);
  const tmp = `${path}${TEMP_SUFFIX}${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, p.header);
    for (const c of p.chunks) await writeAll(file, checked(c, path));
    await file.sync();
    file.close();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    // A full disk (or any failed write) names the file; the previous one is untouched.
    throw new Error(`cannot write ${path} (${(e as Error).message}); the previous file is kept`, {
      cause: e,
    });
  }
  await Deno.rename(tmp, path);
  await syncFolder(dirname(path));
}

/** What the temporary file of {@link writeSafetensorsAtomic} appends to the path, before a pid. */
export const TEMP_SUFFIX = ".tmp-";

/**
 * fsyncs a folder, so a rename into it survives a power loss (the rename is a change of the
 * folder). Where a folder cannot be opened for it (some systems), nothing is done.
 */
export async function syncFolder(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    // Not supported here: the rename is still atomic, only not yet durable.
  } finally {
    f?.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** Converts any numeric tensor to float32 values (F16 and BF16 decoded from their bits). */
export function toFloat32(t: Tensor): Float32Array {
  const n = t.data.byteLength / DTYPE_SIZE[t.dtype];
  const d = t.data instanceof Uint8Array && t.dtype !== "U8" && t.dtype !== "BOOL"
    ? new NATURAL[t.dtype](t.data.slice().buffer)
    : t.data;
  const out = new Float32Array(n);
  if (t.dtype === "BF16") {
    // bfloat16 is the high half of a float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = (d[i] as number) << 16;
  } else if (t.dtype === "F16") {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(d[i] as number);
  } else {
    for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
