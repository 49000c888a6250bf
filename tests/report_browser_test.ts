/**
 * The study report in a real browser: headless Chromium opens the page from disk, every chart
 * draws (an SVG with its title and marks), the page logs no error and requests nothing but the
 * file itself; a screenshot of the whole page is kept in a temporary folder whose path is printed.
 */

import assert from "node:assert";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { optunaTool, tempDir } from "./fixtures/search/helpers.ts";
import { withChromium } from "./helpers/chromium.ts";
import { reportCommand } from "../core/cli/report_command.ts";

interface Drawn {
  id: string;
  svg: boolean;
  width: number;
  paths: number;
  text: string;
}

Deno.test("report in Chromium: every chart rendered, no errors, offline; screenshot kept", async () => {
  await using dir = await tempDir();
  await optunaTool("importance-study", join(dir.path, "optuna.log"), "dominant", "20", "5");
  assert.strictEqual(
    await reportCommand(["--journal", join(dir.path, "optuna.log"), "--study", "dominant"]),
    0,
  );
  const page = join(dir.path, "dominant-report.html");
  const shots = await Deno.makeTempDir({ prefix: "report_screenshot_" });

  await withChromium(async (browser) => {
    const url = pathToFileURL(page).href;
    await browser.goto(url);
    const rendered = await browser.evaluate<string | null>(`new Promise((resolve) => {
      const t0 = Date.now();
      const poll = () => {
        const n = document.documentElement.getAttribute("data-charts-rendered");
        if (n !== null || Date.now() - t0 > 30000) resolve(n); else setTimeout(poll, 100);
      };
      poll();
    })`);
    assert.strictEqual(rendered, "4", "the page drew its four charts");
    const drawn = await browser.evaluate<Drawn[]>(`[...document.querySelectorAll("[data-chart]")]
      .map((el) => {
        const svg = el.querySelector("svg");
        return {
          id: el.getAttribute("data-chart"),
          svg: svg !== null,
          width: svg ? svg.getBoundingClientRect().width : 0,
          paths: el.querySelectorAll("path").length,
          text: el.textContent,
        };
      })`);
    const titles: Record<string, string> = {
      history: "Optimization history",
      importance: "Hyperparameter importances",
      parallel: "Parallel coordinates",
      intermediate: "Intermediate values",
    };
    assert.deepStrictEqual(drawn.map((d) => d.id), Object.keys(titles));
    for (const d of drawn) {
      assert.ok(d.svg && d.width > 300, `${d.id}: an SVG of ${d.width}px`);
      // A mark per complete trial (16), or a bar per parameter (5).
      const least = d.id === "importance" ? 5 : 16;
      assert.ok(d.paths >= least, `${d.id}: ${d.paths} paths, at least ${least}`);
      assert.ok(d.text.includes(titles[d.id]!), `${d.id}: titled`);
    }
    const shot = join(shots, "report.png");
    await Deno.writeFile(shot, await browser.screenshot());
    console.log(`screenshot of the report: ${shot}`);
    assert.deepStrictEqual(browser.problems, [], "the page logged no error");
    assert.deepStrictEqual(browser.requests.filter((r) => r !== url), [], "offline: no requests");
  });
});
