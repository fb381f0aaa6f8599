// better-sqlite3 (the SDK's SQLite store) installs by fetching a prebuilt binary from GitHub, and otherwise compiles
// SQLite: two minutes of both cores on a machine that reaches only the npm registry. Once this project's install
// has built it, that build can stand in for the download: prebuild-install looks first in the directory that
// npm_config_better_sqlite3_local_prebuilds names, for the tarball it would have downloaded. The tarball's name
// carries the version, Node ABI, platform and architecture, so a build is only ever reused where it was made for.
//   npx tsx scripts/sqlite-prebuild.ts <dir>   keeps this install's build in <dir> (CI, for its next run)
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGE = join(ROOT, "node_modules/better-sqlite3");
const BINARY = join(PACKAGE, "build/Release/better_sqlite3.node");

/** The file name prebuild-install downloads for this better-sqlite3 on this Node, platform and architecture. */
export function prebuildName(): string {
  const { version } = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")) as { version: string };
  return `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
}

/**
 * Puts this install's better-sqlite3 build into `dir` as a local prebuild (unless one is there already) and answers
 * the environment that points an npm install at it; nothing when this install has no build to hand on.
 */
export async function keepSqlitePrebuild(dir: string): Promise<Record<string, string>> {
  if (!existsSync(BINARY)) return {};
  const tarball = join(dir, prebuildName());
  if (!existsSync(tarball)) {
    mkdirSync(dir, { recursive: true });
    const stage = mkdtempSync(join(dir, ".stage-"));
    try {
      mkdirSync(join(stage, "build/Release"), { recursive: true });
      copyFileSync(BINARY, join(stage, "build/Release/better_sqlite3.node"));
      // tar writes in place: under a temporary name, a tarball cut short never carries the name an install trusts.
      const partial = `${tarball}.${process.pid}.partial`;
      await promisify(execFile)("tar", ["-czf", partial, "-C", stage, "build"]);
      renameSync(partial, tarball);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: npx tsx scripts/sqlite-prebuild.ts <dir>");
  const env = await keepSqlitePrebuild(dir);
  console.log(env.npm_config_better_sqlite3_local_prebuilds ? `better-sqlite3 build kept in ${dir}` : "no better-sqlite3 build to keep");
}
