// Used only by `prisma generate`; the service applies prisma/migrations itself (see src/db/migrator.ts).
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
});
