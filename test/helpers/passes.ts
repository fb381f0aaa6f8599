// CI runs the suite twice: on PostgreSQL + Redis, then on embedded storage beside the fault tests (.ci/run). A file
// whose subject does not depend on the server's storage (the packed SDK, the CLIs, the pages in a browser) runs in
// the first pass only: the second sets SKIP_STORAGE_INDEPENDENT=1 (on a slow 2-core machine that took the embedded
// pass from 793 to 687 s). `npm test` on its own runs everything.
export const storageIndependentDone = process.env.SKIP_STORAGE_INDEPENDENT === "1";
