import assert from "node:assert";
import { curvesSvg, formatTick, niceStep, type Series } from "../core/io/plot.ts";
import { rng } from "./helpers/random.ts";

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/**
 * A strict parser for the XML subset an SVG needs: one root element, attributes in double or
 * single quotes, the five named entities and numeric references, comments. Throws on anything
 * that is not well-formed (mismatched tags, raw `<` or `&`, duplicate attributes, stray text).
 */
function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(
      `XML not well-formed at offset ${i}: ${msg}: ${JSON.stringify(src.slice(i, i + 30))}`,
    );
  };
  const entity = (s: string) =>
    s.replace(/&([^;]*);|&/g, (m, e: string | undefined) => {
      const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
      if (e === undefined) return fail("bare &");
      if (e in named) return named[e]!;
      const n = /^#x([0-9a-f]+)$/i.exec(e)
        ? parseInt(e.slice(2), 16)
        : /^#\d+$/.test(e)
        ? parseInt(e.slice(1), 10)
        : NaN;
      return Number.isNaN(n) ? fail(`unknown entity ${m}`) : String.fromCodePoint(n);
    });
  const skipMisc = () => {
    for (;;) {
      const ws = /^\s*/.exec(src.slice(i))![0].length;
      i += ws;
      if (src.startsWith("<!--", i)) {
        const end = src.indexOf("-->", i);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (src.startsWith("<?", i)) {
        const end = src.indexOf("?>", i);
        if (end < 0) fail("unterminated declaration");
        i = end + 2;
      } else return;
    }
  };
  const element = (): XmlElement => {
    const open = /^<([A-Za-z_][\w:.-]*)/.exec(src.slice(i)) ?? fail("expected an element");
    i += open[0].length;
    const el: XmlElement = { name: open[1]!, attrs: {}, children: [], text: "" };
    for (;;) {
      const attr = /^\s+([A-Za-z_][\w:.-]*)\s*=\s*("[^"<]*"|'[^'<]*')/.exec(src.slice(i));
      if (!attr) break;
      if (attr[1]! in el.attrs) fail(`duplicate attribute ${attr[1]}`);
      el.attrs[attr[1]!] = entity(attr[2]!.slice(1, -1));
      i += attr[0].length;
    }
    const close = /^\s*(\/?)>/.exec(src.slice(i)) ?? fail("bad tag");
    i += close[0].length;
    if (close[1] === "/") return el;
    for (;;) {
      const lt = src.indexOf("<", i);
      if (lt < 0) fail(`unclosed <${el.name}>`);
      el.text += entity(src.slice(i, lt));
      i = lt;
      if (src.startsWith("</", i)) {
        const end = new RegExp(`^</${el.name}\\s*>`).exec(src.slice(i)) ??
          fail(`expected </${el.name}>`);
        i += end[0].length;
        return el;
      }
      if (src.startsWith("<!--", i)) skipMisc();
      else el.children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (i !== src.length) fail("content after the root element");
  return root;
}

function all(el: XmlElement, name: string): XmlElement[] {
  const found = el.name === name ? [el] : [];
  return found.concat(...el.children.map((c) => all(c, name)));
}

function points(poly: XmlElement): [number, number][] {
  return poly.attrs.points!.trim().split(/\s+/).map((p) =>
    p.split(",").map(Number) as [number, number]
  );
}

function plotArea(svg: XmlElement) {
  const r = all(svg, "rect").find((e) => e.attrs.class === "plot-area")!;
  const [x, y, w, h] = ["x", "y", "width", "height"].map((k) => Number(r.attrs[k]));
  return { x: x!, y: y!, w: w!, h: h! };
}

const OPTS = { title: "MLP on MNIST", xLabel: "step", leftLabel: "loss", rightLabel: "accuracy" };

/** A noisy decaying loss and a rising accuracy over `n` logged steps. */
function curves(n: number, seed: number) {
  const next = rng(seed);
  const loss: [number, number][] = [];
  const acc: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    loss.push([k * 50, 2.3 * Math.exp(-k / 20) + 0.1 * next()]);
    acc.push([k * 50, 1 - 0.9 * Math.exp(-k / 15) - 0.02 * next()]);
  }
  return { loss, acc };
}

Deno.test("plot: well-formed SVG with one polyline per series, inside the plot area", () => {
  const { loss, acc } = curves(60, 1);
  const evalLoss = loss.filter((_, k) => k % 10 === 0).map(([x, y]) =>
    [x, y * 1.1] as [number, number]
  );
  evalLoss.splice(2, 0, [120, NaN], [NaN, 1], [130, Infinity], [-Infinity, 0.5]);
  const series: Series[] = [
    { name: "train loss", points: loss, axis: "left" },
    { name: 'eval <loss> & "co"', points: evalLoss, axis: "left" },
    { name: "eval accuracy", points: acc, axis: "right" },
  ];
  const src = curvesSvg(series, OPTS);
  const svg = parseXml(src);
  assert.strictEqual(svg.name, "svg");
  assert.strictEqual(svg.attrs.width, "800");
  const polys = all(svg, "polyline");
  assert.strictEqual(polys.length, 3);
  assert.deepStrictEqual(polys.map((p) => p.attrs["data-name"]), series.map((s) => s.name));
  assert.deepStrictEqual(
    polys.map((p) => points(p).length),
    [60, 6, 60],
    "non-finite points skipped",
  );
  const a = plotArea(svg);
  for (const p of polys) {
    for (const [x, y] of points(p)) {
      assert.ok(x >= a.x - 0.01 && x <= a.x + a.w + 0.01, `${p.attrs["data-name"]}: x ${x}`);
      assert.ok(y >= a.y - 0.01 && y <= a.y + a.h + 0.01, `${p.attrs["data-name"]}: y ${y}`);
    }
  }
  // Accuracy uses its own (right) axis: it spans most of the height instead of being squeezed
  // into the bottom of the loss axis.
  const accY = points(polys[2]!).map((p) => p[1]);
  assert.ok(Math.max(...accY) - Math.min(...accY) > 0.6 * a.h, "accuracy spans the right axis");
  assert.strictEqual(polys[2]!.attrs["stroke-dasharray"], "6 3");
  // Larger step → further right; larger loss → higher up (smaller y).
  const tl = points(polys[0]!);
  assert.ok(tl[59]![0] > tl[0]![0] && tl[59]![1] > tl[0]![1]);
  const texts = all(svg, "text").map((t) => t.text);
  for (const label of ["MLP on MNIST", "step", "loss", "accuracy", ...series.map((s) => s.name)]) {
    assert.ok(texts.includes(label), `text "${label}" present`);
  }
});

Deno.test("plot: tick labels are short readable numbers in increasing order", () => {
  for (const [lo, hi] of [[0, 2950], [0.0012, 0.0019], [0.91, 0.985], [-3, 250000], [2e-6, 9e-6]]) {
    const pts: [number, number][] = [[lo!, lo!], [hi!, hi!]];
    const svg = parseXml(curvesSvg([{ name: "s", points: pts, axis: "left" }], OPTS));
    for (const axis of ["x-axis", "left-axis"]) {
      const g = all(svg, "g").find((e) => e.attrs.class === axis)!;
      const labels = g.children.filter((c) => c.attrs.class === "tick").map((c) => c.text);
      const values = labels.map(Number);
      assert.ok(labels.length >= 3 && labels.length <= 12, `${axis} [${lo}, ${hi}]: ${labels}`);
      for (const l of labels) {
        assert.ok(l.length <= 7 && /^-?[\d.]+(e-?\d+)?$/.test(l), `label "${l}"`);
      }
      for (let k = 1; k < values.length; k++) {
        assert.ok(values[k]! > values[k - 1]!, `${axis} [${lo}, ${hi}]: ${labels} increasing`);
      }
      assert.ok(values[0]! <= lo! && values.at(-1)! >= hi!, `${axis} ticks cover [${lo}, ${hi}]`);
    }
  }
  assert.strictEqual(niceStep(0.7), 1);
  assert.strictEqual(niceStep(130), 200);
  assert.strictEqual(niceStep(0.03), 0.05);
  assert.strictEqual(formatTick(0.30000000000000004, 0.1), "0.3");
  assert.strictEqual(formatTick(1.5e-5, 5e-6), "1.5e-5");
  assert.strictEqual(formatTick(-1e-17, 0.1), "0");
});

Deno.test("plot: empty series, a single point and only non-finite points", () => {
  const none = parseXml(curvesSvg([], OPTS));
  assert.strictEqual(all(none, "polyline").length, 0);
  assert.ok(all(none, "text").some((t) => t.text === "no data"));

  const series: Series[] = [
    { name: "empty", points: [], axis: "left" },
    { name: "nan only", points: [[1, NaN], [Infinity, 2]], axis: "right" },
    { name: "one", points: [[100, 0.42]], axis: "left" },
  ];
  const svg = parseXml(curvesSvg(series, { ...OPTS, width: 400, height: 300 }));
  const polys = all(svg, "polyline");
  assert.deepStrictEqual(polys.map((p) => p.attrs["data-name"]), ["one"]);
  const [[x, y]] = points(polys[0]!) as [[number, number]];
  const a = plotArea(svg);
  assert.ok(x > a.x && x < a.x + a.w && y > a.y && y < a.y + a.h, `single point ${x},${y} inside`);
  const circles = all(svg, "circle");
  assert.strictEqual(circles.length, 1, "a lone point gets a marker");
  assert.deepStrictEqual([Number(circles[0]!.attrs.cx), Number(circles[0]!.attrs.cy)], [x, y]);
  const texts = all(svg, "text").map((t) => t.text);
  assert.ok(texts.includes("empty (no data)") && texts.includes("nan only (no data)"));
  assert.ok(
    !all(svg, "g").some((g) => g.attrs.class === "right-axis"),
    "no right axis without data",
  );
});

Deno.test("plot: the well-formedness check rejects broken XML", () => {
  for (
    const bad of [
      "<svg><g></svg>",
      '<svg a="1" a="2"/>',
      "<svg>x & y</svg>",
      "<svg/><svg/>",
      "<svg>&nope;</svg>",
    ]
  ) {
    assert.throws(() => parseXml(bad), /XML not well-formed/, bad);
  }
  assert.throws(
    () => curvesSvg([], { ...OPTS, width: NaN }),
    /width must be a number ≥ 200 pixels, got NaN/,
  );
});
