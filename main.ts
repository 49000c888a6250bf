/**
 * The command line: `deno run -A main.ts <command> [flags]`, run by the tasks in deno.json.
 * Errors print one message naming the flag, file or field, and exit with status 1.
 *
 * @module
 */

import { trainCommand } from "./core/cli/train_command.ts";
import { compileCommand } from "./core/cli/compile_command.ts";
import { searchCommand } from "./core/cli/search_command.ts";
import { benchCommand } from "./core/cli/bench_command.ts";
import { predictCommand } from "./core/cli/predict_command.ts";
import { evalCommand } from "./core/cli/eval_command.ts";
import { reportCommand } from "./core/cli/report_command.ts";
import { generateCommand } from "./core/cli/generate_command.ts";
import { exportCommand } from "./core/cli/export_command.ts";

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  train: trainCommand,
  search: searchCommand,
  bench: benchCommand,
  predict: predictCommand,
  eval: evalCommand,
  report: reportCommand,
  generate: (argv) => generateCommand(argv),
  export: exportCommand,
  compile: compileCommand,
};

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  const run = command ? COMMANDS[command] : undefined;
  if (!run) {
    console.error(
      `usage: main.ts <${Object.keys(COMMANDS).join("|")}> [flags]; "${
        command ?? ""
      }" is not a command`,
    );
    Deno.exit(2);
  }
  try {
    Deno.exit(await run(rest));
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (Deno.env.get("WEBGPU_TRAINER_DEBUG")) console.error(e);
    Deno.exit(1);
  }
}
