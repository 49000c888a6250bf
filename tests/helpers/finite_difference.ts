/** Central finite differences (core/testing.ts), for the tests. */
export { dot, numericGradient } from "../../core/util/testing.ts";
