import { defineConfig } from "vitest/config";

/** `npm run test:faults`: real processes under real faults (tests/faults). One file, one test at a time:
 * restarting Redis and Postgres disturbs everything else on the machine. */
export default defineConfig({
  test: {
    include: ["tests/faults/**/*.fault.ts"],
    globalSetup: ["tests/helpers/global-setup.ts"],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 180_000,
  },
});
