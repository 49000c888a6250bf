/**
 * The architecture as a test: each folder of core/ imports only from folders below it (the order
 * of README's Layout table), only core/cli/ imports the built-in plugin list (plugins/, datasets/),
 * every folder has a mod.ts, and no function of the training loop grows past ~150 lines again.
 */

import { deepStrictEqual, ok } from "node:assert";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Bottom to top: a folder may import from its own and earlier folders only. */
const LAYERS = ["util", "gpu", "ops", "graph", "io", "search", "train", "bench", "eval", "cli"];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...walk(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a file, resolved to repository paths. */
function imports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const specs = [
    ...text.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s*["'](\.{1,2}\/[^"']+)["']/gm),
  ]
    .map((m) => m[1]!);
  specs.push(...[...text.matchAll(/^import\s+["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]!));
  return specs.map((s) => relative(ROOT, join(dirname(file), s)));
}

Deno.test("layout: core/ folders import only from folders below them; only cli imports plugins", () => {
  const violations: string[] = [];
  for (const file of walk(join(ROOT, "core"))) {
    const from = relative(ROOT, file).split("/")[1]!;
    const level = LAYERS.indexOf(from);
    ok(level >= 0, `core/${from} is not in the layer list ${LAYERS.join(" < ")}`);
    for (const target of imports(file)) {
      const [top, folder] = target.split("/");
      if (top === "plugins" || top === "datasets") {
        if (from !== "cli") violations.push(`${relative(ROOT, file)} imports ${target}`);
        continue;
      }
      if (top !== "core") continue;
      const to = LAYERS.indexOf(folder!);
      if (to > level) {
        violations.push(`${relative(ROOT, file)} (${from}) imports ${target} (${folder})`);
      }
    }
  }
  deepStrictEqual(violations, []);
});

Deno.test("layout: every core/ folder has a mod.ts; plugins/ and datasets/ import no core/cli", () => {
  for (const folder of LAYERS) {
    ok(Deno.statSync(join(ROOT, "core", folder, "mod.ts")).isFile, `core/${folder}/mod.ts`);
  }
  for (const top of ["plugins", "datasets"]) {
    for (const file of walk(join(ROOT, top))) {
      for (const target of imports(file)) {
        ok(!target.startsWith("core/cli"), `${relative(ROOT, file)} imports ${target}`);
      }
    }
  }
});

Deno.test("layout: no function or method of core/train/ is longer than 150 lines", () => {
  const long: string[] = [];
  for (const file of walk(join(ROOT, "core", "train"))) {
    const lines = Deno.readTextFileSync(file).split("\n");
    // A function starts at a line ending in "{" that declares it, and ends at the first line
    // back at its indentation that closes it.
    lines.forEach((line, i) => {
      const m =
        /^(\s*)(?:export\s+)?(?:async\s+)?(?:function\s+\w+|(?:static\s+)?(?:async\s+)?#?\w+\s*\([^)]*\)?[^=]*)\s*[:{]?.*\{\s*$/
          .exec(line);
      if (!m || /^\s*(if|for|while|switch|catch|else|return|const|let)\b/.test(line)) return;
      const indent = m[1]!;
      const end = lines.findIndex((l, j) => j > i && l.startsWith(`${indent}}`));
      if (end > 0 && end - i > 150) {
        long.push(`${relative(ROOT, file)}:${i + 1} (${end - i} lines)`);
      }
    });
  }
  deepStrictEqual(long, []);
});
