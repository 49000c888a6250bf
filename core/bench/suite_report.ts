/**
 * What the GPU suite writes: one JSON record of every section and item measured so far
 * (`suite.json`) and the same as Markdown tables (`suite.md`), both rewritten atomically (a
 * temporary file, then a rename) after every item, so a suite cut short keeps what it measured.
 *
 * @module
 */

import { join } from "@std/path";

/** How a section or an item ended. */
export type SuiteStatus = "pending" | "running" | "ok" | "partial" | "failed" | "skipped";

/** One measurement: ours, a peer's, or a run's summary. */
export interface SuiteItem {
  /** What it is, shown as the row's name: "matmul f32 4096³", "step f16 B_12-Wi_1024 b4096". */
  id: string;
  /** ok, failed (with `error`) or skipped (with `error` saying why). */
  status: "ok" | "failed" | "skipped";
  /** Rows of ours and of the peers that measure the same thing share it: "matmul 4096³". */
  key?: string;
  /** The headline number, in `unit`. */
  value?: number;
  /** "GFLOP/s", "GB/s", "samples/s", "steps/s". */
  unit?: string;
  /** The ceiling `value` is a fraction of, and that fraction. */
  ceiling?: string;
  fraction_of_ceiling?: number;
  /** Why it failed or was skipped. */
  error?: string;
  /** Anything else the section records (counts, repeats, shapes, tiles, peer versions). */
  [detail: string]: unknown;
}

/** One section of the suite. */
export interface SuiteSection {
  name: string;
  title: string;
  status: SuiteStatus;
  budget_seconds: number;
  /** Wall-clock seconds it took, once it ended. */
  seconds?: number;
  /** Why the section failed or was skipped as a whole. */
  error?: string;
  items: SuiteItem[];
  /** Section-wide facts (the peer's device and version, the tuning cache path). */
  info?: Record<string, unknown>;
}

/** The whole record, as `suite.json` holds it. */
export interface SuiteRecord {
  format: "webgpu-trainer gpu-suite 1";
  command: string;
  /** True for the `--small` rehearsal: shapes shrunk, numbers not comparable to a full run. */
  small: boolean;
  adapter: {
    description: string;
    vendor: string;
    architecture: string;
    /** `isFallbackAdapter`. */
    fallback: boolean;
    /** Whether the suite judged it a software adapter (fallback, or llvmpipe-like by name). */
    software: boolean;
    features: string[];
  };
  /** How every number was taken. */
  method: string;
  started: string;
  /** When the record was last written. */
  updated: string;
  /** When the suite ended; null while it runs (or when it was cut short). */
  finished: string | null;
  sections: SuiteSection[];
}

/** Writes `text` to `path` through a temporary file in the same folder and a rename. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** `suite.json` and `suite.md` in `dir`, rewritten from `record`. */
export async function writeSuite(dir: string, record: SuiteRecord): Promise<void> {
  record.updated = new Date().toISOString();
  await writeAtomic(join(dir, "suite.json"), JSON.stringify(record, null, 2) + "\n");
  await writeAtomic(join(dir, "suite.md"), suiteMarkdown(record));
}

/** A number with 3 significant digits, grouped by thousands above 1000. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en").replaceAll(",", " ");
  return Number(v.toPrecision(3)).toString();
}

const SECTIONS_OURS = new Set(["ceilings", "matmul", "steps", "tiny"]);

/** The record as Markdown: the adapter, one table of ours against the peers, and the rest. */
export function suiteMarkdown(r: SuiteRecord): string {
  const out: string[] = [];
  const a = r.adapter;
  out.push(
    `# GPU suite${r.small ? " (--small rehearsal: shrunk shapes, not GPU numbers)" : ""}`,
    "",
    `- adapter: \`${a.description}\` (vendor \`${a.vendor}\`, architecture \`${a.architecture}\`), ` +
      `isFallbackAdapter: ${a.fallback}${a.software ? " — a software adapter" : ""}`,
    `- features: ${a.features.join(", ") || "none"}`,
    `- command: \`${r.command}\``,
    `- started ${r.started}, ${
      r.finished ? `finished ${r.finished}` : `not finished (last written ${r.updated})`
    }`,
    `- method: ${r.method}`,
    "",
  );
  const section = (name: string) => r.sections.find((s) => s.name === name);
  const peers = (name: string) => section(name)?.items.filter((i) => i.status === "ok") ?? [];
  const tfjs = peers("tfjs");
  const torch = peers("torch");
  const tuned = peers("tuned");
  const peer = (list: SuiteItem[], key: string | undefined, precision?: string) =>
    key === undefined
      ? undefined
      : list.find((i) => i.key === key && (precision === undefined || i.precision === precision));
  const cell = (i: SuiteItem | undefined) =>
    i?.value === undefined ? "" : `${formatNumber(i.value)} ${i.unit ?? ""}`.trim();
  const ratio = (ours: SuiteItem, other: SuiteItem | undefined) =>
    other?.value && ours.value !== undefined ? `${formatNumber(ours.value / other.value)}×` : "";
  out.push(
    "| measure | ours | of ceiling | TF.js WebGPU | ours ÷ TF.js | PyTorch fp32 | ours ÷ PyTorch fp32 | PyTorch TF32 | with tuned tiles |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const missing: string[] = [];
  for (const s of r.sections) {
    for (const item of s.items) {
      if (item.status !== "ok") {
        missing.push(`- ${s.name}: ${item.id} — ${item.status}: ${item.error ?? ""}`);
      }
    }
    if (!SECTIONS_OURS.has(s.name)) continue;
    for (const item of s.items) {
      // Per-shape rows (table: false) stay in the JSON; the table shows their per-model sums.
      if (item.status !== "ok" || item.value === undefined || item.table === false) continue;
      const t = peer(tfjs, item.key);
      const fp32 = peer(torch, item.key, "fp32");
      const tf32 = peer(torch, item.key, "tf32");
      const again = tuned.find((i) => i.id === item.id);
      const frac = item.fraction_of_ceiling === undefined
        ? ""
        : `${(100 * item.fraction_of_ceiling).toFixed(1)}% ${item.ceiling ?? ""}`.trim();
      out.push(
        `| ${item.id} | ${cell(item)} | ${frac} | ${cell(t)} | ${ratio(item, t)} | ${
          cell(fp32)
        } | ${ratio(item, fp32)} | ${cell(tf32)} | ${
          again ? `${cell(again)} (${ratio(again, item)})` : ""
        } |`,
      );
    }
  }
  const info = (name: string) => section(name)?.info ?? {};
  const torchInfo = info("torch");
  if (Object.keys(torchInfo).length > 0) {
    out.push(
      "",
      `PyTorch: ${
        Object.entries(torchInfo).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ")
      }`,
    );
  }
  const tfjsInfo = info("tfjs");
  if (Object.keys(tfjsInfo).length > 0) {
    out.push(
      "",
      `TF.js: ${Object.entries(tfjsInfo).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ")}`,
    );
  }
  const train = section("train")?.items.find((i) => i.status === "ok");
  if (train) {
    out.push(
      "",
      `Training run (\`${train.command}\`): ${train.run_status}, test accuracy ${
        formatNumber(Number(train.test_accuracy))
      }, ${formatNumber(Number(train.seconds))} s, ${
        formatNumber(Number(train.value))
      } samples/s, ${train.steps} steps, ${train.tiles}.`,
    );
  }
  const tune = section("tune");
  if (tune && tune.items.length > 0) {
    const done = tune.items.filter((i) => i.status === "ok");
    out.push(
      "",
      `Tuning: ${done.length} of ${tune.items.length} shapes tuned${
        tune.info?.cache ? `, cached in \`${tune.info.cache}\`` : ""
      }: ${
        done.map((i) =>
          `${i.id} ${formatNumber(Number(i.value))} GFLOP/s (built-in ${
            formatNumber(Number(i.builtin_gflops))
          })`
        ).join("; ")
      }.`,
    );
  }
  out.push(
    "",
    "| section | status | seconds | budget (s) | note |",
    "| --- | --- | --- | --- | --- |",
  );
  for (const s of r.sections) {
    out.push(
      `| ${s.name} | ${s.status} | ${
        s.seconds === undefined ? "" : s.seconds.toFixed(1)
      } | ${s.budget_seconds} | ${(s.error ?? "").replaceAll("|", "\\|").replaceAll("\n", " ")} |`,
    );
  }
  if (missing.length > 0) {
    out.push(
      "",
      "Not measured:",
      "",
      ...missing.map((m) => m.replaceAll("\n", " ")),
    );
  }
  return out.join("\n") + "\n";
}
