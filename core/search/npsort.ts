/**
 * numpy's default `argsort` for float64 (`kind="quicksort"`: introsort with median-of-3
 * partitions, insertion sort up to 16 elements, heapsort past the depth limit; numpy ≤ 1.25
 * without AVX-512). It is not stable, and TPE's bandwidths depend on how it orders ties
 * (spec §3.4), so Optuna's choices are reproduced only with the same permutation.
 * @module
 */

const SMALL_QUICKSORT = 15;

/** numpy's float ordering: NaN after everything. */
function less(a: number, b: number): boolean {
  return a < b || (b !== b && a === a);
}

function msb(n: number): number {
  let depth = 0;
  while ((n >>= 1) > 0) depth++;
  return depth;
}

function aheapsort(v: readonly number[], tosort: number[], start: number, n: number): void {
  // numpy's heapsort uses 1-based indexing over tosort[start - 1 + i].
  const a = (i: number) => start - 1 + i;
  let tmp: number;
  for (let l = n >> 1; l > 0; --l) {
    tmp = tosort[a(l)]!;
    let i = l;
    for (let j = l << 1; j <= n;) {
      if (j < n && less(v[tosort[a(j)]!]!, v[tosort[a(j + 1)]!]!)) j += 1;
      if (less(v[tmp]!, v[tosort[a(j)]!]!)) {
        tosort[a(i)] = tosort[a(j)]!;
        i = j;
        j += j;
      } else break;
    }
    tosort[a(i)] = tmp;
  }
  for (; n > 1;) {
    tmp = tosort[a(n)]!;
    tosort[a(n)] = tosort[a(1)]!;
    n -= 1;
    let i = 1;
    for (let j = 2; j <= n;) {
      if (j < n && less(v[tosort[a(j)]!]!, v[tosort[a(j + 1)]!]!)) j++;
      if (less(v[tmp]!, v[tosort[a(j)]!]!)) {
        tosort[a(i)] = tosort[a(j)]!;
        i = j;
        j += j;
      } else break;
    }
    tosort[a(i)] = tmp;
  }
}

/** `numpy.argsort(v)` (default kind) for float64 values. */
export function numpyArgsort(v: readonly number[]): number[] {
  const t = v.map((_, i) => i);
  const swap = (i: number, j: number) => {
    const x = t[i]!;
    t[i] = t[j]!;
    t[j] = x;
  };
  let pl = 0;
  let pr = v.length - 1;
  const stack: number[] = [];
  const depths: number[] = [];
  let cdepth = msb(v.length) * 2;
  for (;;) {
    if (cdepth < 0) {
      aheapsort(v, t, pl, pr - pl + 1);
    } else {
      while (pr - pl > SMALL_QUICKSORT) {
        const pm = pl + ((pr - pl) >> 1);
        if (less(v[t[pm]!]!, v[t[pl]!]!)) swap(pm, pl);
        if (less(v[t[pr]!]!, v[t[pm]!]!)) swap(pr, pm);
        if (less(v[t[pm]!]!, v[t[pl]!]!)) swap(pm, pl);
        const vp = v[t[pm]!]!;
        let pi = pl;
        let pj = pr - 1;
        swap(pm, pj);
        for (;;) {
          do ++pi; while (less(v[t[pi]!]!, vp));
          do --pj; while (less(vp, v[t[pj]!]!));
          if (pi >= pj) break;
          swap(pi, pj);
        }
        swap(pi, pr - 1);
        // Push the larger partition, continue with the smaller.
        if (pi - pl < pr - pi) {
          stack.push(pi + 1, pr);
          pr = pi - 1;
        } else {
          stack.push(pl, pi - 1);
          pl = pi + 1;
        }
        depths.push(--cdepth);
      }
      for (let pi = pl + 1; pi <= pr; ++pi) {
        const vi = t[pi]!;
        const vp = v[vi]!;
        let pj = pi;
        while (pj > pl && less(vp, v[t[pj - 1]!]!)) {
          t[pj] = t[pj - 1]!;
          pj--;
        }
        t[pj] = vi;
      }
    }
    if (stack.length === 0) break;
    pr = stack.pop()!;
    pl = stack.pop()!;
    cdepth = depths.pop()!;
  }
  return t;
}
