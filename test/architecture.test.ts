// The layout's rules, checked on every test run: no import cycle in src/ (madge, type imports included), the SDK
// imports nothing of the server, only store modules run database statements, and no source file grows past MAX_LINES.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import madge from "madge";
import { beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const MAX_LINES = 450;

/**
 * A database call: a raw statement, a Prisma delegate call (prisma.device.findMany, tx.keyPackage.count, ...) or the
 * pg pool's sql(...) / sql.query(...). A domain's tables are read and written only by its store modules.
 */
const DB_CALL =
  /\$queryRaw|\$executeRaw|\b(prisma|tx|db)\.[a-z][A-Za-z]*\.(find|create|update|delete|upsert|count|aggregate|group)|\bsql\.query|\bsql(<[^>]*>)?\(/;
/** A domain's store modules: store.ts, or <table>-store.ts when one store would pass MAX_LINES. */
const isStore = (file: string) => /(^|\/)([a-z-]+-)?store\.ts$/.test(file);
/** Infrastructure that runs statements for everyone (the client, the pool, the migrator), and generated code. */
const DB_INFRASTRUCTURE = /^(db|generated)\//;

/** The .ts files under `dir` (relative paths) that run database calls but are not allowed to. */
function databaseCallsOutsideStores(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !DB_INFRASTRUCTURE.test(f) && !isStore(f))
    .filter((f) => DB_CALL.test(readFileSync(path.join(dir, f), "utf8")))
    .sort();
}

const graphOf = (dir: string) =>
  madge(path.join(root, dir), {
    fileExtensions: ["ts"],
    tsConfig: path.join(root, "tsconfig.json"),
    excludeRegExp: [/(^|\/)generated\//],
    detectiveOptions: { ts: { skipTypeImports: false }, es6: { skipTypeImports: false } },
  });

describe("architecture", () => {
  let src: Awaited<ReturnType<typeof madge>>;
  beforeAll(async () => {
    src = await graphOf("src");
  });

  it("finds an import cycle where there is one (the check itself works)", async () => {
    const fixture = await graphOf("test/fixtures/cycle");
    expect(fixture.circular()).toEqual([["a.ts", "b.ts"]]);
  });

  it("has no import cycle in src/", () => {
    expect(Object.keys(src.obj()).length).toBeGreaterThan(50);
    expect(src.circular()).toEqual([]);
  });

  it("the SDK (src/client/) imports nothing of the server but generated types", () => {
    const crossing = Object.entries(src.obj())
      .filter(([file]) => file.startsWith("client/"))
      .flatMap(([file, deps]) => deps.filter((d) => !d.startsWith("client/")).map((d) => `${file} -> ${d}`));
    expect(crossing).toEqual([]);
  });

  it("finds database calls outside store modules where there are some (the check itself works)", () => {
    expect(databaseCallsOutsideStores(path.join(root, "test/fixtures/db-calls"))).toEqual(["feature/rules.ts", "feature/service.ts"]);
  });

  it("only store modules (store.ts, *-store.ts) run database calls in src/ (src/db/ and generated code aside)", () => {
    expect(Object.keys(src.obj()).filter(isStore).length).toBeGreaterThan(10);
    expect(databaseCallsOutsideStores(path.join(root, "src"))).toEqual([]);
  });

  it(`no source file in src/ (generated code aside) is over ${MAX_LINES} lines`, () => {
    const files = Object.keys(src.obj());
    const long = files
      .map((f) => ({ f, lines: readFileSync(path.join(root, "src", f), "utf8").split("\n").length }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ f, lines }) => `${f}: ${lines}`);
    expect(long).toEqual([]);
  });
});
