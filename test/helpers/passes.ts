// CI runs the suite twice: on PostgreSQL + Redis, then on embedded storage beside the fault tests (.ci/run). A file
// whose subject does not depend on the server's storage (the packed SDK, the CLIs, the pages in a browser) runs in
// the first pass only: the second sets SKIP_STORAGE_INDEPENDENT=1, which keeps it well under 30 minutes on a
// 2-core machine. `npm test` on its own runs everything.
export const storageIndependentDone = process.env.SKIP_STORAGE_INDEPENDENT === "1";
