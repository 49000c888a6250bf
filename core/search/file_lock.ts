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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An exclusive lock on a journal file, compatible with Optuna's. */
export class JournalFileLock {
  /** The lock path: `<journal>.lock`. */
  readonly lockPath: string;
  readonly #kind: "symlink" | "open";
  readonly #grace: number | null;

  /** A lock for the journal at `journalPath`. */
  constructor(readonly journalPath: string, opts: FileLockOptions = {}) {
    this.lockPath = journalPath + ".lock";
    this.#kind = opts.kind ?? "symlink";
    this.#grace = opts.gracePeriodMs === undefined ? 30_000 : opts.gracePeriodMs;
  }

  /** One attempt; true if the lock is now ours. */
  async tryAcquire(): Promise<boolean> {
    try {
      if (this.#kind === "symlink") await Deno.symlink(this.journalPath, this.lockPath);
      else (await Deno.open(this.lockPath, { createNew: true, write: true })).close();
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
    for (;;) {
      if (await this.tryAcquire()) return;
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

  /** Releases a lock this process holds; throws if it does not hold it. */
  async release(): Promise<void> {
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
