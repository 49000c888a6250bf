/**
 * Time budgets of the GPU suite: a measurement that fits the seconds it is given (a warm-up, a
 * probe of growing counts that estimates one operation, then fewer operations or repeats than
 * asked when the full count would not fit), and a section's clock that shares what is left among
 * the items still to run.
 *
 * @module
 */

import { median } from "./timing.ts";

/**
 * Something timed the bench's way: `run(n)` does n operations back to back and waits once at the
 * end, returning the seconds it took; `dispose` frees what it holds.
 */
export interface TimedRunner {
  run(n: number): Promise<number>;
  dispose(): void;
}

/** What a measurement did: the median seconds of `repeats` runs of `count` operations. */
export interface Measured {
  /** Median seconds of one run of `count` operations. */
  seconds: number;
  count: number;
  repeats: number;
  /** True when the budget made `count` or `repeats` smaller than asked. */
  reduced: boolean;
}

/**
 * The count and repeats that fit `leftSeconds` at `perOpSeconds` an operation: the asked ones when
 * they fit; else fewer repeats (at least 1), then fewer operations (at least 1).
 */
export function fitCounts(
  perOpSeconds: number,
  count: number,
  repeats: number,
  leftSeconds: number,
): { count: number; repeats: number } {
  const cost = (c: number, r: number) => perOpSeconds * c * r;
  if (cost(count, repeats) <= leftSeconds) return { count, repeats };
  const r = Math.max(
    1,
    Math.min(repeats, Math.floor(leftSeconds / Math.max(1e-12, cost(count, 1)))),
  );
  if (cost(count, r) <= leftSeconds) return { count, repeats: r };
  const c = Math.max(1, Math.floor(leftSeconds / Math.max(1e-12, perOpSeconds * r)));
  return { count: Math.min(count, c), repeats: r };
}

/** Seconds since an arbitrary origin; tests inject their own. */
export type Clock = () => number;

/** The wall clock, in seconds. */
export const wallClock: Clock = () => performance.now() / 1000;

/**
 * Runs `runner` once to warm up (compilation, first use), probes 1, 8, 64, … operations until a
 * run takes 20 ms or reaches `count`, then takes the median of the runs that fit
 * `budgetSeconds` (see {@link fitCounts}). Without a budget (Infinity) it runs `count` ×
 * `repeats` as asked.
 */
export async function measureWithin(
  runner: TimedRunner,
  want: { count: number; repeats: number },
  budgetSeconds: number,
  clock: Clock = wallClock,
): Promise<Measured> {
  const start = clock();
  await runner.run(1);
  let plan = { count: want.count, repeats: want.repeats };
  if (Number.isFinite(budgetSeconds)) {
    let n = 1;
    let t = await runner.run(1);
    while (t < 0.02 && n < want.count) {
      n = Math.min(want.count, n * 8);
      t = await runner.run(n);
    }
    plan = fitCounts(t / n, want.count, want.repeats, budgetSeconds - (clock() - start));
  }
  const times: number[] = [];
  for (let r = 0; r < plan.repeats; r++) times.push(await runner.run(plan.count));
  return {
    seconds: median(times),
    ...plan,
    reduced: plan.count < want.count || plan.repeats < want.repeats,
  };
}

/** A section's budget: how long it has, how much is left, and each remaining item's share. */
export class SectionClock {
  /** The section's seconds. */
  readonly budgetSeconds: number;
  readonly #clock: Clock;
  readonly #start: number;

  /** Starts the section's clock now. */
  constructor(budgetSeconds: number, clock: Clock = wallClock) {
    this.budgetSeconds = budgetSeconds;
    this.#clock = clock;
    this.#start = clock();
  }

  /** Seconds since the section started. */
  elapsed(): number {
    return this.#clock() - this.#start;
  }

  /** Seconds left (negative once overspent). */
  left(): number {
    return this.budgetSeconds - this.elapsed();
  }

  /** The share of what is left for the next of `remainingItems` items (0 when spent). */
  share(remainingItems: number): number {
    return Math.max(0, this.left()) / Math.max(1, remainingItems);
  }
}
