/**
 * Run by `deno task test` before the tests: sets up what their references need when it is missing
 * (Mesa's software Vulkan driver, Debian's PyTorch, Optuna, scikit-learn, Redis and Chromium). On
 * Debian as root it installs them, saying what and why; elsewhere it stops at once with the one
 * command to run.
 *
 * @module
 */

import {
  ensureRequirements,
  MissingRequirementError,
  TEST_REQUIREMENTS,
} from "../core/cli/system_packages.ts";

if (import.meta.main) {
  try {
    await ensureRequirements(TEST_REQUIREMENTS, { purpose: "the tests" });
  } catch (e) {
    if (!(e instanceof MissingRequirementError)) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
}
