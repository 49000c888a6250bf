/**
 * Helpers every layer may use: the seeded CPU generator and the float64 comparison and finite-difference helpers of the tests and checkers.
 *
 * @module
 */

export * from "./random.ts";
export * from "./testing.ts";
