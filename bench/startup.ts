/**
 * Start-up: from spawning the process to the first 200 of /readyz, with the full problems/ folder loaded, for
 *   - tsx: `node --import tsx src/main.ts all` (the sources, as `npm run dev` and the old `npm start` ran them),
 *   - compiled: `node dist/src/main.js all` (what `npm start` and the Docker image run),
 *   - npm start: the whole command (dist/ up to date, migrations already applied), npm's own start included;
 * each on a fresh database (the first start stores the sets) and then restarted on it (problems/ unchanged), the
 * restarts alternating between variants so that drifting load on a shared machine hits them alike.
 *
 *   npm run bench:startup [-- --restarts 3]
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { flushPrefix, freePort, freshDatabase, platformEnv, queuePrefix, sleep } from "./lib/platform.ts";
import { log, printTable, writeResult } from "./lib/report.ts";
import { percentile } from "./lib/stats.ts";

const { values } = parseArgs({ options: { restarts: { type: "string", default: "3" } } });
const RESTARTS = Number(values.restarts);

const VARIANTS = {
  tsx: [process.execPath, "--import", "tsx", "src/main.ts", "all"],
  compiled: [process.execPath, "dist/src/main.js", "all"],
  "npm start": ["npm", "start", "--silent"],
} as const;
type Variant = keyof typeof VARIANTS;

/** Spawn → first 200 of /readyz in ms; the process is stopped (SIGTERM, then SIGKILL) before returning. */
async function timeStart(variant: Variant, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const [cmd, ...args] = VARIANTS[variant];
  const t0 = performance.now();
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
    // npm start runs a shell and node under it: a process group lets the stop reach them all.
    detached: true,
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return performance.now() - t0;
      if (child.exitCode !== null) throw new Error(`${variant} exited while starting:\n${stderr}`);
      if (performance.now() - t0 > 120_000) throw new Error(`${variant} did not get ready in 120 s:\n${stderr}`);
      await sleep(10);
    }
  } finally {
    process.kill(-child.pid!, "SIGTERM");
    await Promise.race([exited, sleep(30_000)]);
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  }
}

log("building dist/ if stale (npm start's prestart)");
const build = spawn(process.execPath, ["scripts/build.mjs", "--if-stale"], { stdio: "inherit" });
await new Promise((resolve) => build.once("exit", resolve));

const variants = Object.keys(VARIANTS) as Variant[];
const first: Partial<Record<Variant, number>> = {};
const restarts: Record<Variant, number[]> = { tsx: [], compiled: [], "npm start": [] };
const prefix = queuePrefix("startup");
const dbs: Partial<Record<Variant, string>> = {};
try {
  for (const v of variants) {
    dbs[v] = await freshDatabase(`startup_${v.replace(/\W/g, "_")}`);
    first[v] = await timeStart(v, platformEnv(dbs[v]!, prefix));
    log(`${v}: first start (problems stored) ${Math.round(first[v]!)} ms`);
  }
  for (let i = 0; i < RESTARTS; i++)
    for (const v of variants) {
      restarts[v].push(await timeStart(v, platformEnv(dbs[v]!, prefix)));
      log(`${v}: restart ${i + 1} ${Math.round(restarts[v].at(-1)!)} ms`);
    }
} finally {
  await flushPrefix(prefix);
}

const rows = variants.map((v) => ({
  process: v,
  command: VARIANTS[v].join(" ").replace(process.execPath, "node"),
  "first start ms (stores problems/)": Math.round(first[v]!),
  "restart median ms (problems/ unchanged)": Math.round(percentile(restarts[v], 50)),
  "restart max ms": Math.round(Math.max(...restarts[v])),
}));
const table = printTable(`Start-up to /readyz with problems/ loaded (${RESTARTS} restarts each)`, rows);
const compiled = percentile(restarts.compiled, 50);
console.log(
  `compiled restart ${Math.round(compiled)} ms vs tsx ${Math.round(percentile(restarts.tsx, 50))} ms (target ≤ 2,000 ms): ${compiled <= 2000 ? "met" : "MISSED"}`,
);
await writeResult("startup", { restarts: RESTARTS, first, samples: restarts, rows, table });
