/**
 * Seeded, stratified splits of a labelled set: each class gives its share of the held-out rows,
 * so a file sorted by class still gets a held-out part that looks like the whole (the last N% of
 * such a file would hold one class only). Used for the validation split of every run and by
 * datasets that carve a test split out of one file.
 *
 * @module
 */

import { seededRandom } from "../util/random.ts";
import { permutation } from "./data.ts";

/** Row ids of the two parts, each in increasing order. */
export interface Split {
  keep: Uint32Array;
  heldOut: Uint32Array;
}

/**
 * Holds out `round(count · fraction)` of rows `0 .. count`: class c gives its share
 * n_c · held/count, rounded by largest remainder (ties to the lower class), the rows of each class
 * chosen by a permutation seeded by `seed`. A pure function of its arguments.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  count: number,
  fraction: number,
  seed: number,
): Split {
  const held = Math.round(count * fraction);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const c = labels[i]!;
    let rows = byClass.get(c);
    if (!rows) byClass.set(c, rows = []);
    rows.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const shares = classes.map((c) => (byClass.get(c)!.length * held) / Math.max(1, count));
  const take = shares.map(Math.floor);
  let missing = held - take.reduce((a, b) => a + b, 0);
  const order = classes.map((_, i) => i).sort((a, b) =>
    (shares[b]! - take[b]!) - (shares[a]! - take[a]!) || a - b
  );
  for (const i of order) {
    if (missing <= 0) break;
    take[i]!++;
    missing--;
  }
  const out = new Uint8Array(count);
  const random = seededRandom(seed ^ 0x5b1175);
  classes.forEach((c, i) => {
    const rows = byClass.get(c)!;
    const p = permutation(rows.length, random);
    for (let k = 0; k < take[i]!; k++) out[rows[p[k]!]!] = 1;
  });
  const keep = new Uint32Array(count - held);
  const heldOut = new Uint32Array(held);
  let a = 0;
  let b = 0;
  for (let i = 0; i < count; i++) {
    if (out[i]) heldOut[b++] = i;
    else keep[a++] = i;
  }
  return { keep, heldOut };
}
