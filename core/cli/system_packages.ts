/**
 * What the commands need from the operating system, checked by what it provides (an adapter, a
 * program, a Python module) rather than by package name, and installed from Debian's archive when
 * that is possible: on Debian as root, `apt-get install` with a line saying what and why; anywhere
 * else the check stops at once with the one command to run.
 *
 * @module
 */

import { ensureRuntimeDir } from "../gpu/device.ts";

/** One thing a command needs, how to tell it is there, and the Debian package that provides it. */
export interface Requirement {
  /** The Debian package. */
  readonly package: string;
  /** Why it is needed, for the line printed before installing. */
  readonly why: string;
  /** Whether what the package provides is usable now. */
  present(): Promise<boolean>;
}

/**
 * Whether a WebGPU adapter can be had, asked in a new Deno process (the Vulkan loader lists its
 * drivers once per process, so only a new one sees a driver installed after it started). On Linux
 * it must be a Vulkan one — a GPU's, or Mesa's software driver (lavapipe): without Vulkan, wgpu
 * falls back to OpenGL on Mesa's llvmpipe, which lacks `shader-f16` and subgroups.
 */
export async function hasWebGpuAdapter(): Promise<boolean> {
  ensureRuntimeDir();
  const code = "const a = await navigator.gpu?.requestAdapter(); Deno.exit(a ? 0 : 1);";
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdout: "null",
      stderr: "null",
      env: Deno.build.os === "linux" ? { DENO_WEBGPU_BACKEND: "vulkan" } : {},
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Whether `program --version` runs. */
export async function hasProgram(program: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(program, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Whether Debian's Python (`/usr/bin/python3`) imports `module`. */
export async function hasPythonModule(module: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", `import ${module}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Mesa's software Vulkan driver: the WebGPU adapter (llvmpipe) of a machine without a GPU. */
export const MESA_VULKAN: Requirement = {
  package: "mesa-vulkan-drivers",
  why: "Mesa's software Vulkan driver, the WebGPU adapter (llvmpipe) when there is no GPU",
  present: hasWebGpuAdapter,
};

/**
 * The float64 and PyTorch references, real Optuna (with scikit-learn for its importances), Redis
 * and the browser that the test suite compares with or runs in.
 */
export const TEST_REQUIREMENTS: readonly Requirement[] = [
  MESA_VULKAN,
  {
    package: "python3-torch",
    why: "PyTorch, the reference the kernel, checkpoint and training tests compare with",
    present: () => hasPythonModule("torch"),
  },
  {
    package: "python3-optuna",
    why: "real Optuna 3.1, which writes and reads the journals the search tests compare with",
    present: () => hasPythonModule("optuna"),
  },
  {
    package: "python3-redis",
    why: "Optuna's Redis journal client, for the Redis journal tests",
    present: () => hasPythonModule("redis"),
  },
  {
    package: "redis-server",
    why: "a Redis server on loopback, for the Redis journal tests",
    present: () => hasProgram("redis-server"),
  },
  {
    package: "python3-sklearn",
    why: "scikit-learn, which Optuna's fANOVA importance evaluator (the report's reference) needs",
    present: () => hasPythonModule("sklearn"),
  },
  {
    package: "chromium",
    why: "headless Chromium, in which the browser test opens the study report",
    present: () => hasProgram("/usr/bin/chromium"),
  },
];

/** How this machine can get packages. */
export interface Installer {
  /** Debian (or a derivative) with apt-get. */
  debian: boolean;
  /** Running as root. */
  root: boolean;
}

/** What this machine is. */
export function currentInstaller(): Installer {
  let debian = false;
  try {
    debian = Deno.statSync("/etc/debian_version").isFile &&
      Deno.statSync("/usr/bin/apt-get").isFile;
  } catch {
    debian = false;
  }
  return { debian, root: Deno.uid?.() === 0 };
}

/** The one command that installs `packages` on this machine (or says what to install). */
export function installCommand(packages: readonly string[], installer: Installer): string {
  const list = packages.join(" ");
  if (installer.debian) {
    return `${installer.root ? "" : "sudo "}apt-get install -y --no-install-recommends ${list}`;
  }
  return `install the equivalents of Debian's ${list} with this system's package manager`;
}

/** Raised when something is missing that this process cannot install. */
export class MissingRequirementError extends Error {
  override name = "MissingRequirementError";
}

/** Options of {@link ensureRequirements}. */
export interface EnsureOptions {
  /** Who needs them, for the messages ("the tests", "training"). */
  purpose: string;
  /** Where lines go; default stderr. */
  log?: (line: string) => void;
  installer?: Installer;
  /** Runs a command with inherited output; default Deno.Command. */
  run?: (cmd: string, args: string[]) => Promise<boolean>;
}

/** Runs a command with its output on stderr (stdout stays clean for a --json line). */
async function runInherited(cmd: string, args: string[]): Promise<boolean> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  }).spawn();
  await child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
  return (await child.status).success;
}

/**
 * Checks each requirement; installs the missing ones with apt-get on Debian as root (saying what
 * and why), or throws {@link MissingRequirementError} with the one command to run. Returns the
 * packages it installed.
 */
export async function ensureRequirements(
  requirements: readonly Requirement[],
  options: EnsureOptions,
): Promise<string[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const installer = options.installer ?? currentInstaller();
  const run = options.run ?? runInherited;
  const missing: Requirement[] = [];
  for (const r of requirements) if (!(await r.present())) missing.push(r);
  if (missing.length === 0) return [];
  const packages = missing.map((r) => r.package);
  const reasons = missing.map((r) => `  ${r.package}: ${r.why}`).join("\n");
  if (!installer.debian || !installer.root) {
    throw new MissingRequirementError(
      `${options.purpose} need${
        options.purpose.endsWith("s") ? "" : "s"
      } what this machine lacks:\n${reasons}\nRun: ${installCommand(packages, installer)}`,
    );
  }
  log(`${options.purpose}: installing ${packages.join(", ")} from Debian's archive:\n${reasons}`);
  if (!(await run("apt-get", ["update", "-q"]))) {
    throw new MissingRequirementError(
      `apt-get update failed; run: ${installCommand(packages, installer)}`,
    );
  }
  if (!(await run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages]))) {
    throw new MissingRequirementError(
      `apt-get install failed; run: ${installCommand(packages, installer)}`,
    );
  }
  const still: string[] = [];
  for (const r of missing) if (!(await r.present())) still.push(r.package);
  if (still.length > 0) {
    throw new MissingRequirementError(
      `installed ${packages.join(", ")}, but ${still.join(", ")} still do${
        still.length > 1 ? "" : "es"
      } not work; see the apt-get output above`,
    );
  }
  return packages;
}
