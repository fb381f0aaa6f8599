// `npm run migrate`: applies pending migrations to the configured database and exits.
import { loadConfig } from "../config.ts";
import { openDatabase } from "./database.ts";
import { migrate } from "./migrator.ts";

const config = loadConfig();
const db = await openDatabase(config.database);
try {
  const { applied } = await migrate(db);
  console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
} finally {
  await db.close();
}
