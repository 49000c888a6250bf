/**
 * Opening the adapter for a command that trains: with no WebGPU adapter at all, Mesa's software
 * driver is installed (Debian as root; elsewhere the error gives the one command to run) and the
 * command runs again in a new process, whose Vulkan loader sees the new driver. A software adapter
 * is announced loudly: training then runs on the CPU.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { Gpu, NoAdapterError } from "../gpu/device.ts";
import { ensureRequirements, MESA_VULKAN, MissingRequirementError } from "./system_packages.ts";

const REEXEC = "WEBGPU_TRAINER_REEXEC";

/**
 * The adapter, or the exit code of the command run again after installing a driver: when there
 * is no adapter, or (Linux) only Mesa's OpenGL software path, which lacks `shader-f16`.
 */
export async function openTrainingGpu(
  purpose: string,
  log: (line: string) => void,
): Promise<Gpu | { exitCode: number }> {
  let gpu: Gpu | undefined;
  try {
    gpu = await Gpu.open();
  } catch (e) {
    if (!(e instanceof NoAdapterError) || Deno.env.get(REEXEC)) throw e;
    log(`no WebGPU adapter: ${purpose} needs a GPU driver or Mesa's software Vulkan driver`);
  }
  const glOnly = gpu?.report.fallback && Deno.build.os === "linux" && !Deno.env.get(REEXEC) &&
    !(await MESA_VULKAN.present());
  if (gpu && glOnly) {
    log(`only Mesa's OpenGL software adapter: ${purpose} wants Mesa's software Vulkan driver`);
    try {
      await ensureRequirements([MESA_VULKAN], { purpose, log });
    } catch (e) {
      if (!(e instanceof MissingRequirementError)) throw e;
      log(`warning: ${e.message}\ncontinuing on the OpenGL adapter (no shader-f16)`);
      return announce(gpu, purpose, log);
    }
    gpu.destroy();
    return { exitCode: await runAgain(log) };
  }
  if (!gpu) {
    await ensureRequirements([MESA_VULKAN], { purpose, log });
    return { exitCode: await runAgain(log) };
  }
  return announce(gpu, purpose, log);
}

/** Runs this command again in a new process (whose Vulkan loader sees the new driver). */
async function runAgain(log: (line: string) => void): Promise<number> {
  const args = Deno.build.standalone
    ? Deno.args
    : ["run", "--allow-all", fileURLToPath(Deno.mainModule), ...Deno.args];
  log(`installed; running again: ${[Deno.execPath(), ...args].join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
    env: { [REEXEC]: "1" },
  }).spawn();
  return (await child.status).code;
}

/** Says loudly when training will run on the CPU. */
function announce(gpu: Gpu, purpose: string, log: (line: string) => void): Gpu {
  if (gpu.report.fallback) {
    log(
      [
        "",
        "!".repeat(78),
        `!! NO GPU: ${purpose} runs on the CPU through the software adapter`,
        `!! "${gpu.report.description}" (Mesa's llvmpipe): minutes where a GPU takes seconds.`,
        "!! Install a GPU driver with Vulkan support to train on a GPU.",
        "!".repeat(78),
        "",
      ].join("\n"),
    );
  }
  return gpu;
}
