/**
 * Start-up: from spawning the process to the first 200 of /readyz, with the full problems/ folder loaded, for
 *   - tsx: `node --import tsx src/main.ts all` (the sources, as `npm run dev` and the old `npm start` ran them),
 *   - compiled: `node dist/src/main.js all` (what `npm start` and the Docker image run),
 *   - npm start: the whole command (dist/ up to date, migrations already applied), npm's own start included;
 * with the CPU time the process group used until ready next to each wall time (the load of a shared machine
 * stretches wall time; CPU time is what a start costs);
 * each on a fresh database (the first start stores the sets) and then restarted on it (problems/ unchanged), the
 * restarts alternating between variants so that drifting load on a shared machine hits them alike.
 *
 *   npm run bench:startup [-- --restarts 3]
 */
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { flushPrefix, freePort, freshDatabase, platformEnv, queuePrefix, sleep } from "./lib/platform.ts";
import { log, printTable, writeResult } from "./lib/report.ts";
import { percentile } from "./lib/stats.ts";

const { values } = parseArgs({ options: { restarts: { type: "string", default: "3" } } });
const RESTARTS = Number(values.restarts);

const VARIANTS = {
  tsx: [process.execPath, "--import", "tsx", "src/main.ts", "all"],
  compiled: [process.execPath, "dist/src/main.js", "all"],
  // --ignore-scripts leaves out prestart's build check: dist/ was built above, and on a shared tree someone's edit
  // would otherwise make every start rebuild. What remains is npm, the migration runner and the server.
  "npm start": ["npm", "start", "--silent", "--ignore-scripts"],
} as const;
type Variant = keyof typeof VARIANTS;

/**
 * CPU time used so far by every process of the group `pgid` (utime + stime of /proc/<pid>/stat, all threads):
 * on a shared machine wall time mostly measures the others' load, CPU time what the start itself costs.
 */
async function groupCpuMs(pgid: number): Promise<number> {
  let ticks = 0;
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

interface Start {
  ms: number;
  cpuMs: number;
}

/** Spawn → first 200 of /readyz in ms, and the CPU used until then; the process is stopped (SIGTERM, then SIGKILL) before returning. */
async function timeStart(variant: Variant, env: Record<string, string>): Promise<Start> {
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
      if (ok) return { ms: performance.now() - t0, cpuMs: await groupCpuMs(child.pid!) };
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
const first: Partial<Record<Variant, Start>> = {};
const restarts: Record<Variant, Start[]> = { tsx: [], compiled: [], "npm start": [] };
const prefix = queuePrefix("startup");
const dbs: Partial<Record<Variant, string>> = {};
try {
  for (const v of variants) {
    dbs[v] = await freshDatabase(`startup_${v.replace(/\W/g, "_")}`);
    first[v] = await timeStart(v, platformEnv(dbs[v]!, prefix));
    log(`${v}: first start (problems stored) ${Math.round(first[v]!.ms)} ms, ${first[v]!.cpuMs} ms CPU`);
  }
  for (let i = 0; i < RESTARTS; i++)
    for (const v of variants) {
      restarts[v].push(await timeStart(v, platformEnv(dbs[v]!, prefix)));
      log(`${v}: restart ${i + 1} ${Math.round(restarts[v].at(-1)!.ms)} ms, ${restarts[v].at(-1)!.cpuMs} ms CPU`);
    }
} finally {
  await flushPrefix(prefix);
}

const median = (v: Variant, k: keyof Start) =>
  Math.round(
    percentile(
      restarts[v].map((r) => r[k]),
      50,
    ),
  );
const rows = variants.map((v) => ({
  process: v,
  command: VARIANTS[v].join(" ").replace(process.execPath, "node"),
  "first start ms (stores problems/)": Math.round(first[v]!.ms),
  "first start CPU ms": first[v]!.cpuMs,
  "restart median ms (problems/ unchanged)": median(v, "ms"),
  "restart median CPU ms": median(v, "cpuMs"),
  "restart max ms": Math.round(Math.max(...restarts[v].map((r) => r.ms))),
}));
const table = printTable(`Start-up to /readyz with problems/ loaded (${RESTARTS} restarts each)`, rows);
const compiled = median("compiled", "ms");
console.log(
  `compiled restart ${compiled} ms (${median("compiled", "cpuMs")} ms CPU) vs tsx ${median("tsx", "ms")} ms (${median("tsx", "cpuMs")} ms CPU); target ≤ 2,000 ms: ${compiled <= 2000 ? "met" : "MISSED"}`,
);
await writeResult("startup", { restarts: RESTARTS, first, samples: restarts, rows, table });
