// The SDK as an app gets it: `npm pack`, the tarball installed into an empty project, run by plain Node (no tsx).
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storageIndependentDone } from "../helpers/passes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The SDK's SQLite store needs better-sqlite3, whose install fetches a prebuilt binary from GitHub and otherwise
 * compiles SQLite: two minutes of both cores here, where only the npm registry is reachable, and the project's own
 * install has just done it. So the app is handed that build through prebuild-install's local-prebuilds option, in
 * the tarball it would have downloaded (same Node ABI, platform and architecture). Without a build to hand on, the
 * install compiles as it would anywhere else. Answers the environment for npm install.
 */
async function localSqlitePrebuild(dir: string): Promise<Record<string, string>> {
  const pkg = join(ROOT, "node_modules/better-sqlite3");
  const binary = join(pkg, "build/Release/better_sqlite3.node");
  if (!existsSync(binary)) return {};
  const { version } = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { version: string };
  const stage = join(dir, "stage");
  mkdirSync(join(stage, "build/Release"), { recursive: true });
  copyFileSync(binary, join(stage, "build/Release/better_sqlite3.node"));
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run("tar", ["-czf", join(dir, name), "-C", stage, "build"]);
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

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
    const prebuilds = await localSqlitePrebuild(join(work, "prebuilds"));
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
