/**
 * JSON as Python's `json` module reads and writes it, which is what Optuna's journal holds
 * (spec §1.2, §2.7): bare `NaN`/`Infinity`/`-Infinity` tokens, floats in Python's shortest
 * `repr` (always with a `.` or an exponent), and `ensure_ascii` string escapes. `JSON.parse`
 * rejects the tokens and `JSON.stringify` turns them into `null`, so both directions live here.
 * @module
 */

/** Any value a journal record can hold. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | PyFloat
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * Marks a number that Python must read as a float (`4.0`, not `4`). Plain integral numbers are
 * written as ints; everything non-integral or non-finite is a float anyway.
 */
export class PyFloat {
  /** Wraps `value`. */
  constructor(readonly value: number) {}
}

/** Shorthand for `new PyFloat(x)`. */
export function pyFloat(x: number): PyFloat {
  return new PyFloat(x);
}

/**
 * Python's `repr(float)`: shortest round-trip digits; exponent form when the decimal point
 * position is ≤ -4 or > 16 (`1e-05`, `1e+16`); otherwise fixed with at least one fractional
 * digit (`4.0`).
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const exp = Number(expText);
  const decpt = exp + 1;
  if (x !== 0 && (decpt <= -4 || decpt > 16)) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

/** A JSON string literal with Python's `ensure_ascii=True` escapes (lower-case `\uXXXX`). */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (code < 0x20 || code > 0x7e) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

/** Output spacing: Optuna ≤ 3.6 uses Python's default `", "`/`": "`, 4.x compact `","`/`":"`. */
export type Separators = "default" | "compact";

/** Serialises `value` exactly as Python's `json.dumps(value, separators=…)` would. */
export function pyStringify(value: JsonValue, separators: Separators = "compact"): string {
  const item = separators === "compact" ? "," : ", ";
  const key = separators === "compact" ? ":" : ": ";
  const enc = (v: JsonValue): string => {
    if (v === null) return "null";
    if (v === true) return "true";
    if (v === false) return "false";
    if (v instanceof PyFloat) return pyFloatRepr(v.value);
    if (typeof v === "number") return Number.isInteger(v) ? intRepr(v) : pyFloatRepr(v);
    if (typeof v === "string") return pyString(v);
    if (Array.isArray(v)) return "[" + v.map(enc).join(item) + "]";
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) throw new TypeError(`pyStringify: key "${k}" is undefined`);
      parts.push(pyString(k) + key + enc(x));
    }
    return "{" + parts.join(item) + "}";
  };
  return enc(value);
}

function intRepr(v: number): string {
  // -0 is integral to JS; Python would have it as the float -0.0.
  if (Object.is(v, -0)) return "-0.0";
  // Beyond 2^53 toString switches to exponent form, which Python reads as a float; use BigInt.
  return Math.abs(v) < 1e21 ? v.toString() : BigInt(v).toString();
}

/** Thrown for text that Python's `json.loads` would reject. */
export class PyJsonError extends SyntaxError {
  override name = "PyJsonError";
}

/**
 * Parses JSON text as Python's `json.loads` does, accepting `NaN`, `Infinity` and `-Infinity`.
 * Numbers become JS doubles (ints and floats alike).
 */
export function pyParse(text: string): JsonValue {
  let i = 0;
  const fail = (what: string): never => {
    const near = JSON.stringify(text.slice(Math.max(0, i - 10), i + 10));
    throw new PyJsonError(`Invalid JSON: ${what} at offset ${i} near ${near}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const literal = (word: string, v: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail(`unexpected token`);
  };
  const str = (): string => {
    i++; // opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail("control character in string");
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e !== undefined && simple[e] !== undefined) {
        out += simple[e];
        i += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
      } else fail("invalid escape");
      start = i;
    }
    out += text.slice(start, i);
    i++;
    return out;
  };
  const num = (): number => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (m === null) return fail("invalid number");
    i += m[0].length;
    return Number(m[0]);
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: { [key: string]: JsonValue } = {};
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const k = str();
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        obj[k] = value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return arr;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (c === "t") return literal("true", true);
    if (c === "f") return literal("false", false);
    if (c === "n") return literal("null", null);
    if (c === "N") return literal("NaN", NaN);
    if (c === "I") return literal("Infinity", Infinity);
    if (c === "-" && text.startsWith("-Infinity", i)) return literal("-Infinity", -Infinity);
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return num();
    return fail(c === undefined ? "unexpected end" : "unexpected token");
  };
  const v = value();
  ws();
  if (i !== text.length) fail("extra data");
  return v;
}
