/**
 * Python-compatible JSON and Optuna's distributions, checked against Python's `json` and
 * Optuna 3.1 themselves: float reprs, string escapes, NaN/Infinity tokens, what parses, and the
 * exact distribution strings (with `high` adjustment and `single()`).
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert";
import {
  categoricalDistribution,
  type Choice,
  type Distribution,
  distributionFromJson,
  distributionToJson,
  floatDistribution,
  intDistribution,
  isSingle,
  pyFloatRepr,
  pyParse,
  pyStringify,
  toExternal,
  toInternal,
} from "../core/search/mod.ts";
import { rng } from "./helpers/random.ts";
import { python } from "./fixtures/search/helpers.ts";

/** Random doubles over the whole range: random bit patterns plus awkward decimals. */
function awkwardDoubles(n: number, seed: number): number[] {
  const next = rng(seed);
  const view = new DataView(new ArrayBuffer(8));
  const out = [
    0,
    -0,
    1,
    4,
    1e16,
    1e15,
    1e-4,
    1e-5,
    0.1,
    0.3,
    2 ** 53,
    2 ** 53 + 2,
    5e-324,
    1.7976931348623157e308,
  ];
  while (out.length < n) {
    view.setUint32(0, Math.floor(next() * 2 ** 32));
    view.setUint32(4, Math.floor(next() * 2 ** 32));
    const x = view.getFloat64(0);
    if (Number.isFinite(x)) out.push(x);
    out.push(
      Number(
        (next() * 10 ** Math.floor(next() * 40 - 20)).toPrecision(1 + Math.floor(next() * 17)),
      ),
    );
  }
  return out;
}

Deno.test("pyjson: floats are written as Python's repr", async () => {
  const xs = awkwardDoubles(3000, 11);
  const bits = xs.map((x) => {
    const v = new DataView(new ArrayBuffer(8));
    v.setFloat64(0, x);
    return v.getBigUint64(0).toString(16).padStart(16, "0");
  });
  const code = "import json,struct,sys\n" +
    "print(json.dumps([repr(struct.unpack('>d', bytes.fromhex(h))[0]) for h in json.load(sys.stdin)]))";
  const theirs = JSON.parse(await python(["-c", code], JSON.stringify(bits))) as string[];
  const ours = xs.map(pyFloatRepr);
  const bad = ours.map((o, i) => [o, theirs[i]]).filter(([o, t]) => o !== t);
  deepStrictEqual(bad.slice(0, 5), [], `${bad.length} of ${xs.length} reprs differ`);
  deepStrictEqual([NaN, Infinity, -Infinity].map(pyFloatRepr), ["NaN", "Infinity", "-Infinity"]);
});

Deno.test("pyjson: records serialise byte for byte like json.dumps and parse back", async () => {
  const next = rng(5);
  const alphabet = [
    '"',
    "\\",
    "\n",
    "\r",
    "\t",
    "\b",
    "\f",
    "\u0001",
    "\u001f",
    "\u007f",
    "é",
    "網",
    "😀",
    "a",
    " ",
    "/",
  ];
  const strings = Array.from(
    { length: 200 },
    () =>
      Array.from(
        { length: 1 + Math.floor(next() * 12) },
        () => alphabet[Math.floor(next() * alphabet.length)],
      ).join(""),
  );
  const record = {
    op_code: 7,
    worker_id: "w-1",
    values: [NaN, Infinity, -Infinity, 0.1, 1e-7, 123, -4],
    strings,
    nested: { a: [1, 2.5, null, true, false], "k\u00e9y": {} },
  };
  const code =
    "import json,sys\nv=json.load(sys.stdin)\nprint(json.dumps(v))\nprint(json.dumps(v,separators=(',',':')))";
  const ours = [pyStringify(record, "default"), pyStringify(record, "compact")];
  const theirs = (await python(["-c", code], ours[1]!)).trimEnd().split("\n");
  deepStrictEqual(ours, theirs, "default and compact separators");
  const back = pyParse(ours[0]!) as typeof record;
  deepStrictEqual(back.strings, strings);
  deepStrictEqual(back.values, record.values);
});

Deno.test("pyjson: accepts and rejects what Python's json.loads does", async () => {
  const inputs = [
    "NaN",
    "-Infinity",
    "[1, 2]",
    '{"a": 1}',
    ' {"a" :\t[]} ',
    "1e5",
    "-0",
    "0.5",
    '"\\u00e9\\ud83d\\ude00"',
    "",
    " ",
    "{garbage",
    "[1,]",
    "01",
    "1.",
    ".5",
    "nan",
    "inf",
    '"\t"',
    "[1] x",
    "+1",
    '{"a" 1}',
    "tru",
    '"\\x"',
  ];
  const code = "import json,sys\nout=[]\nfor s in json.load(sys.stdin):\n" +
    "  try: json.loads(s); out.append(True)\n  except ValueError: out.append(False)\nprint(json.dumps(out))";
  const theirs = JSON.parse(await python(["-c", code], JSON.stringify(inputs))) as boolean[];
  const ours = inputs.map((s) => {
    try {
      pyParse(s);
      return true;
    } catch {
      return false;
    }
  });
  deepStrictEqual(
    inputs.filter((_, i) => ours[i] !== theirs[i]),
    [],
    "inputs where we and Python disagree",
  );
});

/** Distribution cases: stepped ranges that need `high` adjusted, logs, ints, categoricals. */
function distributionCases(): [Distribution, string][] {
  const next = rng(9);
  const out: [Distribution, string][] = [];
  const steps = [0.1, 0.25, 0.3, 0.05, 1e-3, 7, 0.7];
  for (let i = 0; i < 60; i++) {
    const low = Number((next() * 4 - 2).toFixed(Math.floor(next() * 3)));
    const high = Number((low + next() * 5).toFixed(Math.floor(next() * 4)));
    const step = steps[i % steps.length]!;
    out.push([
      floatDistribution(low, Math.max(low, high), { step }),
      `FloatDistribution(${pyFloatRepr(low)}, ${pyFloatRepr(Math.max(low, high))}, step=${step})`,
    ]);
    const il = Math.floor(next() * 20 - 10);
    const ih = il + Math.floor(next() * 50);
    const is = 1 + Math.floor(next() * 9);
    out.push([intDistribution(il, ih, { step: is }), `IntDistribution(${il}, ${ih}, step=${is})`]);
  }
  out.push(
    [floatDistribution(1e-5, 0.1, { log: true }), "FloatDistribution(1e-05, 0.1, log=True)"],
    [floatDistribution(-10, 10), "FloatDistribution(-10, 10)"],
    [floatDistribution(0.5, 0.5), "FloatDistribution(0.5, 0.5)"],
    [intDistribution(1, 1000, { log: true }), "IntDistribution(1, 1000, log=True)"],
    [intDistribution(3, 3), "IntDistribution(3, 3)"],
    [
      categoricalDistribution(["adam", "sgd", null, 3, 1.5, true]),
      'CategoricalDistribution(["adam", "sgd", None, 3, 1.5, True])',
    ],
    [categoricalDistribution(["only"]), 'CategoricalDistribution(["only"])'],
  );
  return out;
}

Deno.test("distributions: strings, high adjustment and single() equal Optuna's", async () => {
  const cases = distributionCases();
  const code =
    "import json,sys\nfrom optuna.distributions import *\nimport warnings\nwarnings.simplefilter('ignore')\n" +
    "out=[]\nfor e in sys.stdin.read().splitlines():\n  d=eval(e)\n  out.append([distribution_to_json(d), d.single()])\n" +
    "print(json.dumps(out))";
  const theirs = JSON.parse(await python(["-c", code], cases.map((c) => c[1]).join("\n"))) as [
    string,
    boolean,
  ][];
  for (const [i, [d, expr]] of cases.entries()) {
    strictEqual(distributionToJson(d), theirs[i]![0], expr);
    strictEqual(isSingle(d), theirs[i]![1], `single() of ${expr}`);
    deepStrictEqual(distributionFromJson(theirs[i]![0]), d, `parse back ${expr}`);
  }
});

Deno.test("distributions: legacy and abbreviated forms parse as Optuna parses them", async () => {
  const forms = [
    '{"name": "UniformDistribution", "attributes": {"low": 0.0, "high": 2.0}}',
    '{"name": "LogUniformDistribution", "attributes": {"low": 0.001, "high": 1.0}}',
    '{"name": "DiscreteUniformDistribution", "attributes": {"low": 0.0, "high": 1.0, "q": 0.3}}',
    '{"name": "IntUniformDistribution", "attributes": {"low": 0, "high": 9, "step": 2}}',
    '{"name": "IntLogUniformDistribution", "attributes": {"low": 1, "high": 64, "step": 1}}',
    '{"name": "FloatDistribution", "attributes": {"low": 0, "high": 1}}',
    '{"type": "float", "low": 0.5, "high": 2, "log": true}',
    '{"type": "int", "low": 0, "high": 10, "step": 3}',
    '{"type": "categorical", "choices": ["a", 1, null]}',
  ];
  const code = "import json,sys,warnings\nwarnings.simplefilter('ignore')\n" +
    "from optuna.distributions import json_to_distribution, distribution_to_json, FloatDistribution, IntDistribution\n" +
    "def conv(d):\n  # legacy classes are Float/Int subclasses in 3.1; compare as the modern class\n" +
    "  if isinstance(d, FloatDistribution): d = FloatDistribution(d.low, d.high, log=d.log, step=d.step)\n" +
    "  elif isinstance(d, IntDistribution): d = IntDistribution(d.low, d.high, log=d.log, step=d.step)\n  return d\n" +
    "print(json.dumps([distribution_to_json(conv(json_to_distribution(s))) for s in json.load(sys.stdin)]))";
  const theirs = JSON.parse(await python(["-c", code], JSON.stringify(forms))) as string[];
  deepStrictEqual(forms.map((f) => distributionToJson(distributionFromJson(f))), theirs);
  throws(
    () => distributionFromJson('{"name": "NormalDistribution", "attributes": {}}'),
    /Unknown distribution class/,
  );
  throws(() => floatDistribution(1, 0), /low=1 must be <= high=0/);
  throws(() => floatDistribution(0, 1, { log: true }), /must be > 0 for log/);
  throws(() => intDistribution(1, 8, { log: true, step: 2 }), /must be 1 for log/);
});

Deno.test("distributions: internal values follow Python equality for choices", () => {
  const c = categoricalDistribution([1, true, NaN, "1", null] as Choice[]);
  deepStrictEqual([true, 1, NaN, "1", null, 1.0].map((v) => toInternal(c, v)), [0, 0, 2, 3, 4, 0]);
  strictEqual(toExternal(intDistribution(0, 10), 4.0), 4);
  strictEqual(toExternal(c, 3), "1");
  throws(() => toInternal(c, "x"), /not among the choices/);
});
