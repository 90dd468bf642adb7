// Thread entry for the grader pool. Threads are plain Node: neither the tsx CLI's hooks (npm run dev,
// npm run grade) nor vitest's transform are guaranteed to reach them. In the compiled build (dist/, what
// npm start and the Docker image run) tasks.js sits next to this file and is imported as it is; run from
// the sources, the TypeScript task module is loaded through tsx's scoped loader, which works the same
// under all of them. tsx is imported only in that case, so production threads never load it.
import { existsSync } from "node:fs";
import { workerData } from "node:worker_threads";

const compiled = new URL("./tasks.js", import.meta.url);
const tasks = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import("tsx/esm/api")).tsImport("./tasks.ts", import.meta.url);

// A grading worker's threads (ThreadSettings.preload) are ready to grade once booted: see tasks.preload.
if (workerData?.preload) tasks.preload();

export default (task) => tasks.runTask(task);
