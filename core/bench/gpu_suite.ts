/**
 * `deno task bench --suite gpu --out DIR`: one command that measures, in order and within a time
 * budget each (under 5 minutes on a GPU in all), the adapter's ceilings, matmul, the training
 * steps of Scaling MLPs' BottleneckMLPs, a tiny MLP, TF.js and PyTorch on the same products and
 * steps, a real training run, tile tuning and the steps again with the tuned tiles. It names the
 * adapter first and refuses a software one unless the plan is the `--small` rehearsal. After every
 * item it rewrites `suite.json` and `suite.md` atomically; a section that fails is recorded and the
 * next one runs (on a fresh device if the GPU reported an error).
 *
 * @module
 */

import { Gpu } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import type { Registry } from "../train/registry.ts";
import { overrideTuning, type TuningCache } from "../ops/tuning.ts";
import { SectionClock } from "./budget.ts";
import { SECTION_TITLES, type SectionName, SUITE_SECTIONS, type SuitePlan } from "./suite_plan.ts";
import { type SuiteItem, type SuiteRecord, type SuiteSection, writeSuite } from "./suite_report.ts";
import { ceilingsSection, matmulSection } from "./suite_kernels.ts";
import { stepsSection, tinySection, tunedSection, tuneSection } from "./suite_steps.ts";
import { tfjsSection, torchSection, trainSection } from "./suite_peers.ts";

/** What every section reads and shares. */
export interface SuiteContext {
  /** The device (replaced by a fresh one after a section that broke it). */
  gpu: Gpu;
  kernels: KernelCache;
  registry: Registry;
  plan: SuitePlan;
  outDir: string;
  /** The Python interpreter of the PyTorch peer. */
  python: string;
  log: (line: string) => void;
  /** The record so far (a later section reads an earlier one's items). */
  record: SuiteRecord;
  /** What earlier sections found: the ceilings (GFLOP/s, GB/s) and the tuned tiles. */
  found: {
    fmaF32?: number;
    fmaF16?: number;
    copyGbps?: number;
    tuned?: TuningCache["matmul"];
  };
}

/** A running section: its clock, its record, and how its items are run and recorded. */
export interface SectionRun {
  clock: SectionClock;
  section: SuiteSection;
  /**
   * Runs one item with its share of what is left of the budget (what is left over
   * `remaining` items, this one included) and records it: ok with what `fn` returned, failed with
   * its error, or skipped when the budget is spent. Rewrites the files.
   */
  item(
    id: string,
    remaining: number,
    fn: (budgetSeconds: number) => Promise<Omit<SuiteItem, "id" | "status">>,
  ): Promise<SuiteItem>;
  /** Records an item made elsewhere (a peer's line) and rewrites the files. */
  record(item: SuiteItem): Promise<void>;
}

/** A section's code. */
export type SectionCode = (ctx: SuiteContext, run: SectionRun) => Promise<void>;

const SECTION_CODE: Record<SectionName, SectionCode> = {
  ceilings: ceilingsSection,
  matmul: matmulSection,
  steps: stepsSection,
  tiny: tinySection,
  tfjs: tfjsSection,
  torch: torchSection,
  train: trainSection,
  tune: tuneSection,
  tuned: tunedSection,
};

/** A software adapter: `isFallbackAdapter`, or a CPU rasteriser by name (llvmpipe, SwiftShader). */
export function isSoftwareAdapter(
  report: { fallback: boolean; description: string; vendor: string; architecture: string },
): boolean {
  return report.fallback ||
    /llvmpipe|lavapipe|softpipe|swiftshader|basic render|software/i.test(
      `${report.description} ${report.vendor} ${report.architecture}`,
    );
}

/** What {@link runGpuSuite} needs. */
export interface GpuSuiteOptions {
  registry: Registry;
  plan: SuitePlan;
  /** The folder `suite.json`, `suite.md` and the training run go to (made if missing). */
  outDir: string;
  python: string;
  /** The sections to run (the others are recorded as skipped). */
  sections: ReadonlySet<SectionName>;
  /** The command line, for the record. */
  command: string;
  log: (line: string) => void;
  /** Opens the device; default {@link Gpu.open}. */
  openGpu?: () => Promise<Gpu>;
}

/**
 * Runs the suite; returns the record it wrote. Throws before writing anything when the adapter is
 * a software one and the plan is not `--small`.
 */
export async function runGpuSuite(options: GpuSuiteOptions): Promise<SuiteRecord> {
  const open = options.openGpu ?? (() => Gpu.open());
  const { plan, log } = options;
  let gpu = await open();
  const r = gpu.report;
  const software = isSoftwareAdapter(r);
  log(
    `adapter: ${r.description} (isFallbackAdapter: ${r.fallback})${software ? " — software" : ""}`,
  );
  if (software && !plan.small) {
    gpu.destroy();
    throw new Error(
      `the adapter "${r.description}" is a software one (isFallbackAdapter: ${r.fallback}): its numbers are not GPU numbers, so --suite gpu stops here. ` +
        "On a GPU machine, check that Vulkan finds the driver (ls /usr/local/nvidia/share/vulkan/icd.d/; ldconfig -p | grep vulkan); " +
        "add --small to rehearse the suite on this adapter",
    );
  }
  await Deno.mkdir(options.outDir, { recursive: true });
  const now = new Date().toISOString();
  const record: SuiteRecord = {
    format: "webgpu-trainer gpu-suite 1",
    command: options.command,
    small: plan.small,
    adapter: {
      description: r.description,
      vendor: r.vendor,
      architecture: r.architecture,
      fallback: r.fallback,
      software,
      features: r.features,
    },
    method:
      "each number: N operations (products, copies, steps) encoded back to back with one wait at the end (a readback), " +
      `median of up to ${plan.repeats} repeats after a warm-up and a probe; fewer operations or repeats when the section's time budget requires (each item records its count and repeats); ` +
      "fractions are of the measured f32 FMA ceiling (f16 storage still computes in f32)",
    started: now,
    updated: now,
    finished: null,
    sections: SUITE_SECTIONS.map((name) => ({
      name,
      title: SECTION_TITLES[name],
      status: options.sections.has(name) ? "pending" : "skipped",
      budget_seconds: plan.budgets[name],
      ...(options.sections.has(name) ? {} : { error: "not in --sections" }),
      items: [],
    })),
  };
  const ctx: SuiteContext = {
    gpu,
    kernels: new KernelCache(gpu),
    registry: options.registry,
    plan,
    outDir: options.outDir,
    python: options.python,
    log,
    record,
    found: {},
  };
  const save = () => writeSuite(options.outDir, record);
  await save();
  overrideTuning(gpu, null); // the built-in tiles until the tune section has tuned
  try {
    for (const section of record.sections) {
      if (section.status !== "pending") continue;
      const name = section.name as SectionName;
      try {
        ctx.gpu.check();
      } catch (e) {
        log(`the device failed (${(e as Error).message}); opening a fresh one for ${name}`);
        ctx.gpu.destroy();
        gpu = await open();
        overrideTuning(gpu, name === "tuned" ? ctx.found.tuned ?? null : null);
        Object.assign(ctx, { gpu, kernels: new KernelCache(gpu) });
      }
      await runSection(ctx, section, SECTION_CODE[name], save);
      const ok = section.items.filter((i) => i.status === "ok").length;
      log(
        `${name}: ${section.status} in ${
          section.seconds?.toFixed(1)
        } s (budget ${section.budget_seconds} s), ${ok} of ${section.items.length} items${
          section.error ? ` — ${section.error.split("\n")[0]}` : ""
        }`,
      );
    }
    record.finished = new Date().toISOString();
    await save();
  } finally {
    overrideTuning(ctx.gpu, undefined);
    ctx.gpu.destroy();
  }
  return record;
}

/** Runs one section: its items, its status from theirs, its seconds; a throw fails the section. */
async function runSection(
  ctx: SuiteContext,
  section: SuiteSection,
  code: SectionCode,
  save: () => Promise<void>,
): Promise<void> {
  const clock = new SectionClock(section.budget_seconds);
  section.status = "running";
  await save();
  const run: SectionRun = {
    clock,
    section,
    async item(id, remaining, fn) {
      let item: SuiteItem;
      if (clock.left() <= 0) {
        item = {
          id,
          status: "skipped",
          error: `the section's ${section.budget_seconds} s budget was spent`,
        };
      } else {
        try {
          const share = clock.share(remaining);
          item = { id, status: "ok", ...await ctx.gpu.scoped(id, () => fn(share)) };
        } catch (e) {
          item = { id, status: "failed", error: (e as Error).message };
        }
      }
      await run.record(item);
      return item;
    },
    async record(item) {
      section.items.push(item);
      if (item.status !== "ok") ctx.log(`  ${item.id}: ${item.status}: ${item.error}`);
      await save();
    },
  };
  try {
    await code(ctx, run);
    if (section.status === "running") {
      const count = (status: string) => section.items.filter((i) => i.status === status).length;
      const [ok, skipped, all] = [count("ok"), count("skipped"), section.items.length];
      section.status = ok === all
        ? "ok"
        : ok > 0
        ? "partial"
        : skipped === all
        ? "skipped"
        : "failed";
    }
  } catch (e) {
    section.status = "failed";
    section.error = (e as Error).message;
  }
  section.seconds = clock.elapsed();
  await save();
}
