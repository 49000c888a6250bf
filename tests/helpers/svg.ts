/**
 * Reading SVG in tests: a strict well-formedness check that also parses, and the polylines a chart
 * library draws as `<path d="M x y L x y ...">` elements.
 */

/** One parsed element. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/**
 * A strict parser for the XML subset an SVG needs: one root element, attributes in double or
 * single quotes, the five named entities and numeric references, comments, CDATA. Throws on anything
 * that is not well-formed (mismatched tags, raw `<` or `&`, duplicate attributes, stray text).
 */
export function parseXml(src: string): XmlElement {
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
      if (src.startsWith("<![CDATA[", i)) { // a <style> block's CSS, taken as it is
        const end = src.indexOf("]]>", i);
        if (end < 0) fail("unterminated CDATA");
        el.text += src.slice(i + 9, end);
        i = end + 3;
      } else if (src.startsWith("<!--", i)) skipMisc();
      else el.children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (i !== src.length) fail("content after the root element");
  return root;
}

/** Every element named `name` at or under `el`. */
export function all(el: XmlElement, name: string): XmlElement[] {
  const found = el.name === name ? [el] : [];
  return found.concat(...el.children.map((c) => all(c, name)));
}

/** A stroked polyline of a chart: its colour and vertices. */
export interface Polyline {
  stroke: string;
  points: [number, number][];
}

/** The `<path>`s made only of straight segments (`M x y L x y ...`) that have a stroke. */
export function polylines(svg: XmlElement): Polyline[] {
  const out: Polyline[] = [];
  for (const p of all(svg, "path")) {
    const d = p.attrs.d ?? "";
    const stroke = p.attrs.stroke;
    if (!stroke || stroke === "none" || !/^M[-\d.e\s]+(L[-\d.e\s]+)*$/.test(d)) continue;
    const points = d.slice(1).split("L").map((xy) =>
      xy.trim().split(/\s+/).map(Number) as [number, number]
    );
    out.push({ stroke, points });
  }
  return out;
}

/** The text content of every `<text>` element, in document order. */
export function texts(svg: XmlElement): string[] {
  return all(svg, "text").map((t) => t.text);
}
