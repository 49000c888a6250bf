/** The project's `assertClose` (core/testing.ts), for the tests. */
export { assertClose, type CloseOptions, type CloseStats } from "../../core/util/testing.ts";
