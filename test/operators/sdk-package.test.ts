// The SDK as an app gets it: `npm pack`, the tarball installed into an empty project, run by plain Node (no tsx).
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keepSqlitePrebuild } from "../../scripts/sqlite-prebuild.ts";
import { storageIndependentDone } from "../helpers/passes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

// Packing does not depend on the storage, and it is the slowest file of the suite (tsc, npm install): see passes.ts.
describe.skipIf(storageIndependentDone)("the packed SDK", () => {
  let server: TestServer;
  let work: string;

  beforeAll(async () => {
    server = await startServer();
    work = mkdtempSync(join(tmpdir(), "vg-pack-"));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("installs from its tarball and exchanges messages from plain Node", async () => {
    // prepack builds dist/client (tsc) first; --ignore-scripts=false in case the caller's npm config turned them off.
    const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts=false", "--pack-destination", work], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain("dist/client/index.js");
    expect(paths).toContain("dist/client/index.d.ts");
    expect(paths.some((p) => p.startsWith("src/") || p.startsWith("test/"))).toBe(false);

    const app = join(work, "app");
    rmSync(app, { recursive: true, force: true });
    await run("mkdir", ["-p", app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "an-app", private: true, type: "module" }));
    // better-sqlite3 would compile SQLite again (two minutes here): the app gets the project's own build instead.
    const prebuilds = await keepSqlitePrebuild(join(work, "prebuilds"));
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=dev", join(work, packed.filename)],
      { cwd: app, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...prebuilds } },
    );
    expect(existsSync(join(app, "node_modules/vignette-messaging/dist/client/index.js"))).toBe(true);
    expect(readdirSync(join(app, "node_modules/vignette-messaging"))).not.toContain("src");
    copyFileSync(join(ROOT, "test/operators/fixtures/installed-app.mjs"), join(app, "app.mjs"));

    // Plain node: no loader, no TypeScript anywhere in what it runs.
    const out = await run(process.execPath, ["app.mjs", server.url], { cwd: app, timeout: 90_000 });
    expect(JSON.parse(out.stdout.trim().split("\n").pop()!)).toEqual({
      toBob: "hello bob, from an installed package",
      toAlice: "hello alice",
    });
  }, 600_000);
});
