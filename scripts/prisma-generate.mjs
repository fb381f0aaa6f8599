// `prisma generate` needs no query or schema engine for the TypeScript client, but the CLI still tries to download
// the schema engine unless one is named. Nothing outside the package registries is reachable on our machines, so
// we name a file that exists; generation never runs it.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(import.meta.url);
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";
const result = spawnSync("npx", ["--no-install", "prisma", "generate"], { stdio: "inherit", env });
process.exit(result.status ?? 1);
