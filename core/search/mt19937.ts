/**
 * numpy's legacy `RandomState(seed)`: MT19937 seeded with `init_genrand(seed)` and 53-bit
 * doubles `((a >> 5) · 2^26 + (b >> 6)) / 2^53`. Optuna's samplers draw from it, so with the
 * same seed our samplers reproduce Optuna's draws (spec §3.5, §5.1).
 * @module
 */

const N = 624;
const M = 397;

/** A seeded numpy-compatible `RandomState` (only what the samplers use). */
export class RandomState {
  #mt = new Uint32Array(N);
  #i = N;

  /** Seeds like `numpy.random.RandomState(seed)`; `seed` must be an integer in [0, 2^32). */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`RandomState seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, mod 2^32, without losing bits to double rounding.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The next raw 32-bit output (`genrand_int32`). */
  nextUint32(): number {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % N]! & 0x7fffffff);
        mt[k] = mt[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#i = 0;
    }
    let y = mt[this.#i++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `random_sample()`: a double in [0, 1). */
  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** `uniform(low, high)`: `low + (high − low) · random()`. */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }
}
