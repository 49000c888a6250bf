import assert from "node:assert";
import { join } from "node:path";
import {
  decodeSafetensors,
  type DType,
  DTYPE_SIZE,
  encodeSafetensors,
  readSafetensors,
  type Tensor,
  toFloat32,
  writeSafetensorsAtomic,
} from "../core/io/safetensors.ts";
import { rng } from "./helpers/random.ts";

const ALL_DTYPES = Object.keys(DTYPE_SIZE) as DType[];

/** Seeded random bytes for a tensor of `dtype`; floats kept finite and in a readable range. */
function randomTensor(dtype: DType, shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const next = rng(seed);
  const f = () => (next() - 0.5) * 8;
  const i = (k: number) => Math.floor(next() * k);
  switch (dtype) {
    case "F64":
      return { dtype, shape, data: Float64Array.from({ length: n }, f) };
    case "F32":
      return { dtype, shape, data: Float32Array.from({ length: n }, f) };
    case "F16": // sign, exponent 1..29 (finite, normal), random mantissa
      return {
        dtype,
        shape,
        data: Uint16Array.from({ length: n }, () => (i(2) << 15) | ((1 + i(29)) << 10) | i(1024)),
      };
    case "BF16": {
      const bits = new Uint32Array(Float32Array.from({ length: n }, f).buffer);
      return { dtype, shape, data: Uint16Array.from(bits, (b) => b >>> 16) };
    }
    case "I64":
      return {
        dtype,
        shape,
        data: BigInt64Array.from({ length: n }, () => BigInt(i(2 ** 40)) - (1n << 39n) << 20n),
      };
    case "U64":
      return {
        dtype,
        shape,
        data: BigUint64Array.from({ length: n }, () => BigInt(i(2 ** 40)) << 23n),
      };
    case "I32":
      return { dtype, shape, data: Int32Array.from({ length: n }, () => i(2 ** 32) - 2 ** 31) };
    case "U32":
      return { dtype, shape, data: Uint32Array.from({ length: n }, () => i(2 ** 32)) };
    case "I16":
      return { dtype, shape, data: Int16Array.from({ length: n }, () => i(65536) - 32768) };
    case "U16":
      return { dtype, shape, data: Uint16Array.from({ length: n }, () => i(65536)) };
    case "I8":
      return { dtype, shape, data: Int8Array.from({ length: n }, () => i(256) - 128) };
    case "U8":
      return { dtype, shape, data: Uint8Array.from({ length: n }, () => i(256)) };
    case "BOOL":
      return { dtype, shape, data: Uint8Array.from({ length: n }, () => i(2)) };
  }
}

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function assertSameTensors(actual: Record<string, Tensor>, expected: Record<string, Tensor>) {
  assert.deepStrictEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const a = actual[name]!;
    assert.strictEqual(a.dtype, e.dtype, `${name} dtype`);
    assert.deepStrictEqual(a.shape, e.shape, `${name} shape`);
    assert.deepStrictEqual(bytesOf(a), bytesOf(e), `${name} bytes`);
  }
}

Deno.test("safetensors: every dtype round-trips through encode/decode, header padded", () => {
  const shapes = [[2, 3], [7], [], [0, 4], [1, 1, 5]];
  const tensors: Record<string, Tensor> = {};
  ALL_DTYPES.forEach((d, k) => {
    tensors[`t.${d.toLowerCase()}`] = randomTensor(d, shapes[k % shapes.length]!, 100 + k);
  });
  const metadata = { step: "17", config: JSON.stringify({ lr: 1e-3, name: "ünïcode" }) };
  const bytes = encodeSafetensors(tensors, metadata);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.strictEqual(n % 8, 0, "header length is a multiple of 8");
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/s, "header is JSON padded with spaces");
  const out = decodeSafetensors(bytes);
  assert.deepStrictEqual(out.metadata, metadata);
  assertSameTensors(out.tensors, tensors);
  // Decoded arrays come back in each dtype's natural type.
  assert.ok(out.tensors["t.f32"]!.data instanceof Float32Array);
  assert.ok(out.tensors["t.i64"]!.data instanceof BigInt64Array);
  assert.ok(out.tensors["t.bf16"]!.data instanceof Uint16Array);
});

Deno.test("safetensors: raw Uint8Array data is accepted for any dtype; toFloat32 decodes", () => {
  const f = randomTensor("F32", [3, 4], 5);
  const raw: Tensor = { dtype: "F32", shape: [3, 4], data: bytesOf(f).slice() };
  const out = decodeSafetensors(encodeSafetensors({ w: raw })).tensors.w!;
  assert.deepStrictEqual(out.data, f.data);
  // Half and bfloat16 bit patterns of known values (1, -2, 0.5, 65504 / 1, -2, 0.5, 3.140625).
  const half = toFloat32({
    dtype: "F16",
    shape: [4],
    data: new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]),
  });
  assert.deepStrictEqual(Array.from(half), [1, -2, 0.5, 65504]);
  const bf = toFloat32({
    dtype: "BF16",
    shape: [4],
    data: new Uint16Array([0x3f80, 0xc000, 0x3f00, 0x4049]),
  });
  assert.deepStrictEqual(Array.from(bf), [1, -2, 0.5, 3.140625]);
  const ints = toFloat32({ dtype: "I64", shape: [2], data: new BigInt64Array([-3n, 1n << 40n]) });
  assert.deepStrictEqual(Array.from(ints), [-3, 2 ** 40]);
});

// Parses a file the way the safetensors package does (json + struct + torch.frombuffer; Debian's
// python3 has no `safetensors` module) and prints every tensor's values as float64 hex bytes or
// integer strings, so that nothing is lost crossing JSON.
const PY_DUMP = `
import json, struct, sys, numpy as np, torch
TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
         "U8": torch.uint8, "BOOL": torch.bool}
NUMPY = {"U16": "<u2", "U32": "<u4", "U64": "<u8"}  # torch 1.13 has no unsigned wider than 8 bits
def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header length not a multiple of 8"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        d = info["dtype"]
        if d in NUMPY:
            out[name] = np.frombuffer(data[b:e], dtype=NUMPY[d]).reshape(info["shape"])
        elif e == b:
            out[name] = torch.empty(info["shape"], dtype=TORCH[d])
        else:
            out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=TORCH[d]).reshape(info["shape"])
    return out, header.get("__metadata__", {})
def dump(tensors, metadata):
    res = {}
    for name, t in tensors.items():
        shape = list(t.shape)
        if isinstance(t, np.ndarray):
            vals = [str(int(v)) for v in t.reshape(-1)]
        elif t.is_floating_point():
            vals = t.double().reshape(-1).numpy().tobytes().hex()
        else:
            vals = [str(int(v)) for v in t.reshape(-1).tolist()]
        res[name] = {"shape": shape, "values": vals}
    return json.dumps({"tensors": res, "metadata": metadata})
`;

async function python(script: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", script, ...args] })
    .output();
  const err = new TextDecoder().decode(out.stderr);
  assert.strictEqual(out.code, 0, `python3 failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

interface Dumped {
  tensors: Record<string, { shape: number[]; values: string | string[] }>;
  metadata: Record<string, string>;
}

/** Checks our tensors against python's dump: same shapes and exactly the same values. */
function assertMatchesDump(ours: Record<string, Tensor>, dumped: Dumped) {
  assert.deepStrictEqual(Object.keys(dumped.tensors).sort(), Object.keys(ours).sort());
  for (const [name, t] of Object.entries(ours)) {
    const d = dumped.tensors[name]!;
    assert.deepStrictEqual(d.shape, t.shape, `${name} shape`);
    if (typeof d.values === "string") {
      const hex = d.values.match(/../g) ?? [];
      const f64 = new Float64Array(Uint8Array.from(hex, (h) => parseInt(h, 16)).buffer);
      const expected = t.dtype === "F64" ? (t.data as Float64Array) : toFloat32(t);
      assert.deepStrictEqual(Array.from(f64), Array.from(expected), `${name} values`);
    } else {
      const ints = Array.from(t.data as ArrayLike<number | bigint>, (v) => String(v));
      assert.deepStrictEqual(d.values, ints, `${name} values`);
    }
  }
}

Deno.test("safetensors: a file we write loads in python/torch with the same values", async () => {
  const dir = await Deno.makeTempDir({ prefix: "st_py_" });
  try {
    const tensors: Record<string, Tensor> = {};
    ALL_DTYPES.forEach((d, k) => {
      tensors[`layers.${k}.${d}`] = randomTensor(d, k % 3 === 0 ? [3, 5] : [k + 1], 300 + k);
    });
    tensors["empty"] = randomTensor("F32", [0, 3], 1);
    const metadata = { step: "1200", config: '{"a": [1, 2]}' };
    const path = join(dir, "model.safetensors");
    await writeSafetensorsAtomic(path, tensors, metadata);
    const dumped: Dumped = JSON.parse(
      await python(`${PY_DUMP}\nprint(dump(*load(sys.argv[1])))`, path),
    );
    assert.deepStrictEqual(dumped.metadata, metadata);
    assertMatchesDump(tensors, dumped);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Writes a file by hand in python, following the format as the safetensors package does: data
// ordered by dtype size then name, header keys in another order, __metadata__ last.
const PY_WRITE = `
torch.manual_seed(7)
ts = {"fc1.weight": torch.randn(4, 3), "fc1.bias": torch.randn(4).half(),
      "emb": torch.randn(2, 5).bfloat16(), "steps": torch.arange(-3, 3, dtype=torch.int64) * 2**40,
      "mask": torch.rand(6) > 0.5, "pix": torch.randint(0, 256, (2, 2), dtype=torch.uint8),
      "d": torch.randn(3, dtype=torch.float64), "zero": torch.zeros(0, 2)}
order = sorted(ts, key=lambda k: (-ts[k].element_size(), k))
DT = {v: k for k, v in TORCH.items()}
header, blobs, off = {}, [], 0
for k in order:
    b = ts[k].contiguous().numpy().tobytes() if ts[k].dtype != torch.bfloat16 else \\
        ts[k].view(torch.int16).numpy().tobytes()
    header[k] = {"dtype": DT[ts[k].dtype], "shape": list(ts[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
header = dict(sorted(header.items()))
header["__metadata__"] = {"format": "pt", "note": "written by python"}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(dump(*load(sys.argv[1])))
`;

Deno.test("safetensors: a file python writes loads in ours with the same values", async () => {
  const dir = await Deno.makeTempDir({ prefix: "st_py_" });
  try {
    const path = join(dir, "from_python.safetensors");
    const dumped: Dumped = JSON.parse(await python(`${PY_DUMP}\n${PY_WRITE}`, path));
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepStrictEqual(metadata, { format: "pt", note: "written by python" });
    assert.strictEqual(tensors["fc1.bias"]!.dtype, "F16");
    assert.strictEqual(tensors["emb"]!.dtype, "BF16");
    assert.strictEqual(tensors["mask"]!.dtype, "BOOL");
    assertMatchesDump(tensors, dumped);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A file with a hand-written header and `dataLength` data bytes. */
function craft(header: unknown, dataLength: number, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(() => decodeSafetensors(bytes, "bad.safetensors"), (e: Error) => {
    assert.strictEqual(e.name, "SafetensorsError");
    assert.match(e.message, /^bad\.safetensors: /);
    assert.match(e.message, pattern);
    return true;
  });
}

const F32x2 = (begin: number) => ({ dtype: "F32", shape: [2], data_offsets: [begin, begin + 8] });

Deno.test("safetensors: truncated files and bad header lengths fail naming the problem", async () => {
  const good = encodeSafetensors({
    a: randomTensor("F32", [4], 1),
    b: randomTensor("I32", [3], 2),
  });
  rejects(good.subarray(0, 5), /truncated: 5 bytes/);
  rejects(good.subarray(0, good.length - 3), /tensor "b".*run past the \d+ data bytes/);
  rejects(good.subarray(0, 20), /header length \d+ exceeds the 12 bytes/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  rejects(huge, /header length 4611686018427387904 exceeds/);
  const short = good.slice();
  new DataView(short.buffer).setBigUint64(0, 9n, true);
  rejects(short, /header \(9 bytes\) is not UTF-8 JSON/);
  rejects(craft([1, 2], 0), /header must be a JSON object/);
  // Through a file: the message names the path.
  const dir = await Deno.makeTempDir({ prefix: "st_bad_" });
  try {
    const path = join(dir, "cut.safetensors");
    await Deno.writeFile(path, good.subarray(0, good.length - 1));
    await assert.rejects(readSafetensors(path), (e: Error) => {
      assert.ok(e.message.startsWith(`${path}: `), e.message);
      assert.match(e.message, /truncated file/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: overlapping, gapped and mis-sized offsets fail naming the tensor", () => {
  rejects(
    craft({ a: F32x2(0), b: F32x2(4) }, 12),
    /tensor "b": data_offsets \[4, 12\] overlaps tensor "a"/,
  );
  rejects(craft({ a: F32x2(0), b: F32x2(12) }, 20), /tensor "b".*leaves a gap after tensor "a"/);
  rejects(craft({ a: F32x2(4) }, 12), /tensor "a".*leaves a gap after the start of the data/);
  rejects(craft({ a: F32x2(0) }, 12), /4 trailing bytes after the last tensor/);
  rejects(
    craft({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8),
    /tensor "a": shape \[3\] × F32 is 12 bytes but data_offsets \[0, 8\] span 8/,
  );
  rejects(
    craft({ a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, 8),
    /tensor "a": data_offsets must be/,
  );
  rejects(
    craft({ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, 8),
    /tensor "a": shape \[-2\]/,
  );
  rejects(
    craft({ a: { dtype: "F8_E4M3", shape: [8], data_offsets: [0, 8] } }, 8),
    /tensor "a": unknown dtype "F8_E4M3"/,
  );
});

Deno.test("safetensors: non-string metadata is rejected when writing and reading", () => {
  rejects(
    craft({ __metadata__: { step: 3 }, a: F32x2(0) }, 8),
    /__metadata__\["step"\] must be a string, got 3/,
  );
  rejects(craft({ __metadata__: ["x"] }, 0), /__metadata__ must be an object of strings/);
  const meta = { step: 3 } as unknown as Record<string, string>;
  assert.throws(
    () => encodeSafetensors({}, meta),
    /__metadata__\["step"\] must be a string, got number 3/,
  );
});

Deno.test("safetensors: invalid tensors are rejected when encoding", () => {
  const f = randomTensor("F32", [2, 2], 9);
  assert.throws(
    () => encodeSafetensors({ w: { ...f, shape: [2, 3] } }),
    /tensor "w": shape \[2,3\] × F32 is 24 bytes, data has 16/,
  );
  assert.throws(
    () => encodeSafetensors({ w: { ...f, dtype: "I32" } }),
    /tensor "w": dtype I32 needs a Int32Array or raw Uint8Array, got Float32Array/,
  );
  assert.throws(
    () => encodeSafetensors({ w: { ...f, dtype: "F4" as DType } }),
    /tensor "w": unknown dtype "F4"; known are "F64"/,
  );
  assert.throws(() => encodeSafetensors({ __metadata__: f }), /"__metadata__" is reserved/);
});

Deno.test("safetensors: atomic write replaces the file and leaves no temporary behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "st_atomic_" });
  try {
    const path = join(dir, "model.safetensors");
    const v1 = { w: randomTensor("F32", [8, 8], 1) };
    await writeSafetensorsAtomic(path, v1, { step: "1" });
    const v2 = { w: randomTensor("F32", [8, 8], 2), b: randomTensor("F32", [8], 3) };
    await writeSafetensorsAtomic(path, v2, { step: "2" });
    const back = await readSafetensors(path);
    assert.deepStrictEqual(back.metadata, { step: "2" });
    assertSameTensors(back.tensors, v2);
    const names = Array.from(Deno.readDirSync(dir), (e) => e.name);
    assert.deepStrictEqual(names, ["model.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: a write that fails midway keeps the old file and removes the temp", async () => {
  const dir = await Deno.makeTempDir({ prefix: "st_atomic_" });
  try {
    const path = join(dir, "model.safetensors");
    await writeSafetensorsAtomic(path, { w: randomTensor("F32", [16], 1) }, { step: "1" });
    const before = await Deno.readFile(path);
    const second = randomTensor("F32", [1000], 3);
    const pending = writeSafetensorsAtomic(
      path,
      { w: randomTensor("F32", [16], 2), second },
      { step: "2" },
    );
    // The header is planned synchronously; the bytes are written after the first await. Taking
    // the second tensor's buffer away now makes the write fail after the header and the first
    // tensor reached the temporary file — a failure in the middle of the write.
    (second.data.buffer as ArrayBuffer).transfer();
    await assert.rejects(pending, /tensor "second" changed size while being written/);
    assert.deepStrictEqual(await Deno.readFile(path), before, "old checkpoint intact");
    const names = Array.from(Deno.readDirSync(dir), (e) => e.name);
    assert.deepStrictEqual(names, ["model.safetensors"], "no temporary file left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
