/**
 * `deno task bench --suite gpu --out DIR [--small] [--sections a,b] [--models N] [--python P]`:
 * the flags of the GPU suite (core/bench/gpu_suite.ts), checked before anything runs; prints the
 * suite's progress and, at the end, its Markdown table.
 *
 * @module
 */

import { join } from "@std/path";
import { builtinRegistry } from "../../plugins/mod.ts";
import { runGpuSuite } from "../bench/gpu_suite.ts";
import { type SectionName, SUITE_SECTIONS, suitePlan } from "../bench/suite_plan.ts";
import { suiteMarkdown } from "../bench/suite_report.ts";
import { parseFlags, userPath } from "./args.ts";

/** The suite's help text. */
export const SUITE_HELP =
  `Usage: deno task bench --suite gpu --out DIR [--small] [--sections LIST] [--models N]
       [--python python3]

Runs, in order and each within a time budget (under 5 minutes in all on a GPU): ${
    SUITE_SECTIONS.join(", ")
  }. Prints the adapter and isFallbackAdapter first and stops on a software adapter unless
--small, the rehearsal, which shrinks every shape and epoch so the whole suite runs in a few
minutes there. Writes DIR/suite.json and DIR/suite.md after every item (atomically), the
training run to DIR/train-mnist-gpu and its log to DIR/train.log. A section that fails is
recorded and the next one runs; the exit status is 2 when a section failed.
  --sections LIST  comma-separated sections to run (default all)
  --models N       only the first N of the 5 step models (their shapes, steps and peers)
  --budget-scale X multiplies every section's time budget (default 1: 255 s in all)
  --python P       the interpreter of the PyTorch peer (default python3)`;

const FLAGS = ["suite", "out", "small", "sections", "models", "budget_scale", "python", "help"];

/** Runs `deno task bench --suite ...`; returns the exit code. */
export async function benchSuiteCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, new Set(["small", "help"]));
  if (parsed.booleans.has("help")) {
    console.log(SUITE_HELP);
    return 0;
  }
  for (const key of [...parsed.values.keys(), ...parsed.booleans]) {
    if (!FLAGS.includes(key)) {
      throw new RangeError(
        `flag --${key.replaceAll("_", "-")} is not a flag of --suite gpu; its flags are ${
          FLAGS.filter((f) => f !== "suite").map((f) => `--${f.replaceAll("_", "-")}`).join(", ")
        }`,
      );
    }
  }
  if (parsed.positionals.length > 0) {
    throw new RangeError(
      `--suite gpu takes no positional arguments, got "${parsed.positionals[0]}"`,
    );
  }
  const one = (k: string) => parsed.values.get(k)?.at(-1);
  if (one("suite") !== "gpu") {
    throw new RangeError(`--suite must be "gpu" (the only suite), got "${one("suite")}"`);
  }
  const out = one("out");
  if (!out) throw new RangeError("--suite gpu needs --out DIR (where suite.json and suite.md go)");
  const number = (k: string) => one(k) === undefined ? undefined : Number(one(k));
  const plan = suitePlan({
    small: parsed.booleans.has("small"),
    models: number("models"),
    budgetScale: number("budget_scale"),
  });
  const sections = new Set<SectionName>(SUITE_SECTIONS);
  const list = one("sections");
  if (list !== undefined) {
    sections.clear();
    for (const name of list.split(",").map((s) => s.trim()).filter(Boolean)) {
      if (!(SUITE_SECTIONS as readonly string[]).includes(name)) {
        throw new RangeError(
          `--sections: unknown section "${name}"; known are ${
            SUITE_SECTIONS.map((s) => `"${s}"`).join(", ")
          }`,
        );
      }
      sections.add(name as SectionName);
    }
    if (sections.size === 0) throw new RangeError("--sections names no section");
  }
  const outDir = userPath(out);
  const record = await runGpuSuite({
    registry: builtinRegistry(),
    plan,
    outDir,
    python: one("python") ?? "python3",
    sections,
    command: `deno task bench ${argv.join(" ")}`,
    log: (line) => console.log(line),
  });
  console.log(`\n${suiteMarkdown(record)}`);
  console.log(`results in ${join(outDir, "suite.json")} and ${join(outDir, "suite.md")}`);
  const failed = record.sections.filter((s) => s.status === "failed").map((s) => s.name);
  if (failed.length > 0) {
    console.error(`sections failed: ${failed.join(", ")} (their errors are in suite.md)`);
    return 2;
  }
  return 0;
}
