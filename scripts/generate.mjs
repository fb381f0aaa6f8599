// `npm run generate`: the Prisma client (src/generated/prisma) and the SDK's typed documents (src/client/generated).
//
// Skipped when nothing it reads has changed since the last run (a hash of the inputs kept beside the output):
// `npm test`, `npm start` and every bench run it first, and rewriting files that another process is importing at
// that moment (a second test run, a server starting) makes that process fail to resolve a half-written module.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stamp = path.join(root, "src/generated/.inputs.sha256");
const outputs = ["src/generated/prisma/client.ts", "src/client/generated/index.ts", "src/client/generated/persisted-documents.json"];

function graphqlFiles(dir) {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".graphql"))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

// package-lock.json stands for the generators' versions.
const inputs = ["prisma/schema.prisma", "prisma.config.ts", "schema.graphql", "codegen.ts", "package-lock.json", "scripts/generate.mjs", ...graphqlFiles("src/client/operations")];
const hash = createHash("sha256");
for (const file of inputs) hash.update(`${file}\0`).update(readFileSync(path.join(root, file))).update("\0");
const digest = hash.digest("hex");

const upToDate = existsSync(stamp) && readFileSync(stamp, "utf8").trim() === digest && outputs.every((f) => existsSync(path.join(root, f)));
if (upToDate && process.env.FORCE_GENERATE !== "1") process.exit(0);

// `prisma generate` needs no query or schema engine for the TypeScript client, but the CLI still tries to download
// the schema engine unless one is named. Nothing outside the package registries is reachable on our machines, so
// we name a file that exists; generation never runs it.
const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: "1" };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(import.meta.url);
const run = (args) => spawnSync("npx", ["--no-install", ...args], { stdio: "inherit", env, cwd: root }).status ?? 1;

const status = run(["prisma", "generate"]) || run(["graphql-codegen", "--config", "codegen.ts", "--silent"]);
if (status !== 0) process.exit(status);
writeFileSync(stamp, `${digest}\n`);
