// `npm run schema`: prints the Pothos schema to schema.graphql (committed; a test fails when it is stale).
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { printSchemaFile } from "../src/graphql/print.ts";

const target = fileURLToPath(new URL("../schema.graphql", import.meta.url));
writeFileSync(target, printSchemaFile());
console.log(`wrote ${target}`);
