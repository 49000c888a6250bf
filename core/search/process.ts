/**
 * Which process runs a trial, and whether it still lives: host name, pid, and the pid's start
 * time from `/proc/<pid>/stat` (field 22), so a recycled pid is not mistaken for the worker.
 * Off Linux the start time is unknown and liveness cannot be decided (null).
 * @module
 */

/** This process's identity. */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /** Start time in clock ticks since boot, or -1 when unknown. */
  pidStart: number;
}

let cached: ProcessIdentity | null = null;

function startTicks(pid: number | "self"): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]); // field 22 overall; fields[0] is field 3
  } catch {
    return null;
  }
}

/** The current process's identity (computed once). */
export function currentProcess(): ProcessIdentity {
  if (cached) return cached;
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys: liveness falls back to heartbeat age
  }
  cached = { host, pid: Deno.pid, pidStart: startTicks("self") ?? -1 };
  return cached;
}

/** Whether the process (pid, start ticks) on this host is alive; null if that cannot be known. */
export function processAlive(pid: number, pidStart: number): boolean | null {
  if (!Number.isInteger(pid) || pid <= 0 || pidStart < 0) return null;
  try {
    Deno.statSync("/proc/self/stat");
  } catch {
    return null; // no procfs
  }
  const ticks = startTicks(pid);
  return ticks !== null && ticks === pidStart;
}
