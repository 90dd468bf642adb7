// Thread entry for the grader pool. Threads are plain Node: neither the tsx CLI's hooks (npm start,
// npm run grade) nor vitest's transform are guaranteed to reach them, so this file loads the
// TypeScript task module through tsx's scoped loader, which works the same under all three.
import { tsImport } from "tsx/esm/api";

const tasks = await tsImport("./tasks.ts", import.meta.url);

export default (task) => tasks.runTask(task);
