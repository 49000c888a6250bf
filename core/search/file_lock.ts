/**
 * The inter-process locks of Optuna's file journal (spec §1.8): `<journal>.lock` created as a
 * symbolic link to the journal (`JournalFileSymlinkLock`, the default) or with O_EXCL
 * (`JournalFileOpenLock`); both use the same path, so either excludes the other and Optuna's
 * writers. Retries back off from 1 ms to 1 s. Release renames the lock to a unique name, then
 * unlinks it. Like Optuna ≥ 4.3, a lock whose mtime has not moved for `gracePeriodMs` is taken
 * to be left by a dead writer and broken.
 * @module
 */

/** Options for {@link JournalFileLock}. */
export interface FileLockOptions {
  /** "symlink" (Optuna's default) or "open" (O_CREAT|O_EXCL, for file systems without links). */
  kind?: "symlink" | "open";
  /** Break a lock whose mtime is unchanged this long; null waits forever (Optuna ≤ 4.2). */
  gracePeriodMs?: number | null;
  /** Told, every `waitReportMs`, how long a wait for the lock has lasted (default: silent). */
  onWait?: (waitedMs: number, lockPath: string) => void;
  /** How often `onWait` is told (default 10 000 ms). */
  waitReportMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A lock file's identity: its inode (reused at once by some file systems) and creation time. */
function identity(info: Deno.FileInfo): string {
  return `${info.ino ?? "?"}:${(info.birthtime ?? info.mtime)?.getTime() ?? "?"}`;
}

/** An exclusive lock on a journal file, compatible with Optuna's. */
export class JournalFileLock {
  /** The lock path: `<journal>.lock`. */
  readonly lockPath: string;
  readonly #kind: "symlink" | "open";
  readonly #grace: number | null;
  readonly #onWait?: (waitedMs: number, lockPath: string) => void;
  readonly #waitReportMs: number;
  /** The lock file's identity (inode and creation time) when we took it: release checks it. */
  #held: string | null = null;

  /** A lock for the journal at `journalPath`. */
  constructor(readonly journalPath: string, opts: FileLockOptions = {}) {
    this.lockPath = journalPath + ".lock";
    this.#kind = opts.kind ?? "symlink";
    this.#grace = opts.gracePeriodMs === undefined ? 30_000 : opts.gracePeriodMs;
    this.#onWait = opts.onWait;
    this.#waitReportMs = opts.waitReportMs ?? 10_000;
  }

  /** One attempt; true if the lock is now ours. */
  async tryAcquire(): Promise<boolean> {
    try {
      if (this.#kind === "symlink") await Deno.symlink(this.journalPath, this.lockPath);
      else (await Deno.open(this.lockPath, { createNew: true, write: true })).close();
      this.#held = identity(await Deno.lstat(this.lockPath));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return false;
      throw e;
    }
  }

  /** Waits until the lock is ours. */
  async acquire(): Promise<void> {
    let wait = 0.001;
    let lastMtime: number | null = null;
    let lastChange = performance.now();
    const began = performance.now();
    let told = began;
    for (;;) {
      if (await this.tryAcquire()) return;
      if (this.#onWait && performance.now() - told >= this.#waitReportMs) {
        told = performance.now();
        this.#onWait(told - began, this.lockPath);
      }
      if (this.#grace !== null) {
        const mtime = await this.#mtime();
        if (mtime !== lastMtime) {
          lastMtime = mtime;
          lastChange = performance.now();
        } else if (mtime !== null && performance.now() - lastChange > this.#grace) {
          // The holder has not touched the file for the grace period: it died holding it.
          await this.#breakLock();
          wait = 0.001;
          lastMtime = null;
          lastChange = performance.now();
          continue;
        }
      }
      await sleep(wait * 1000);
      wait = Math.min(wait * 2, 1);
    }
  }

  /**
   * Releases a lock this process holds; throws if it does not hold it — also when the lock there
   * now is another writer's (ours was broken as stale while we held it), which is left alone.
   */
  async release(): Promise<void> {
    const held = this.#held;
    this.#held = null;
    if (held !== null) {
      const now = await Deno.lstat(this.lockPath).then(identity, () => null);
      if (now !== held) {
        throw new Error(
          `Error: did not possess lock ${this.lockPath}: ${
            now === null ? "it is gone" : "another writer holds it now (ours was broken as stale)"
          }`,
        );
      }
    }
    const renamed = `${this.lockPath}${crypto.randomUUID()}.rename`;
    try {
      await Deno.rename(this.lockPath, renamed);
    } catch (e) {
      throw new Error(`Error: did not possess lock ${this.lockPath}`, { cause: e });
    }
    await Deno.remove(renamed);
  }

  async #mtime(): Promise<number | null> {
    try {
      // stat follows the symlink to the journal, as Optuna's does.
      return (await Deno.stat(this.lockPath)).mtime?.getTime() ?? null;
    } catch {
      return null;
    }
  }

  async #breakLock(): Promise<void> {
    const renamed = `${this.lockPath}${crypto.randomUUID()}.rename`;
    try {
      await Deno.rename(this.lockPath, renamed);
      await Deno.remove(renamed);
    } catch {
      // Someone else broke or released it first.
    }
  }
}
