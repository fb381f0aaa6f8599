// Used only by `prisma generate`; the service applies prisma/migrations itself (see src/store/migrator.ts).
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
});
