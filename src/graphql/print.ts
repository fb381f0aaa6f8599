// Prints the schema as schema.graphql (npm run schema; a test checks the committed file is fresh).
import { lexicographicSortSchema, printSchema } from "graphql";
import { schema } from "./index.ts";

export function printSchemaFile(): string {
  return `# Generated from the Pothos schema by \`npm run schema\`. Do not edit by hand.\n\n${printSchema(lexicographicSortSchema(schema))}\n`;
}
