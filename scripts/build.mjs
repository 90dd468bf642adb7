// `npm run build`: the server compiled to dist/ (tsc -p tsconfig.build.json), plus the files it reads at run time
// that are not TypeScript (the thread and sandbox entries, onnx.proto). `--if-stale` (npm start's prestart) skips
// the compile when nothing under the compiled trees changed since the last build, so a restart costs no tsc.
// Plain JS so that it runs before anything is compiled and without a TypeScript loader.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(root, "dist");
/** Everything the build reads: a change to any of it makes dist/ stale. */
const SOURCES = [
  "src",
  "graders",
  "scripts/migrate.ts",
  "tsconfig.json",
  "tsconfig.build.json",
  "package-lock.json",
  "prisma/schema.prisma",
];
const STAMP = path.join(OUT, ".build-stamp");

function* files(p) {
  const s = statSync(p, { throwIfNoEntry: false });
  if (!s) return;
  if (!s.isDirectory()) return yield [p, s];
  for (const name of readdirSync(p)) yield* files(path.join(p, name));
}

const newest = () => Math.max(...SOURCES.flatMap((s) => [...files(path.join(root, s))].map(([, st]) => st.mtimeMs)));

if (process.argv.includes("--if-stale") && existsSync(STAMP) && statSync(STAMP).mtimeMs >= newest()) process.exit(0);

const started = Date.now();
const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
// tsc exits 2 when it found type errors but still wrote every file. `npm run build` (CI, the Docker image) refuses
// them; a start (`--if-stale`) runs what was emitted, as tsx would run the sources, and says so.
const lenient = process.argv.includes("--if-stale") && tsc.status === 2;
if (tsc.status !== 0 && !lenient) {
  console.error("build failed: tsc reported errors (see above); dist/ is not up to date.");
  process.exit(tsc.status ?? 1);
}
if (lenient) console.error("warning: type errors (see above); starting the JavaScript tsc emitted anyway. `npm run lint` fails on them.");
// Non-TypeScript run-time files, at the same relative paths (tsc copies none of them).
let copied = 0;
for (const dir of ["src", "graders"])
  for (const [file] of files(path.join(root, dir))) {
    if (!/\.(mjs|proto)$/.test(file)) continue;
    const to = path.join(OUT, path.relative(root, file));
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(file, to);
    copied++;
  }
writeFileSync(STAMP, `${new Date(started).toISOString()}\n`);
// Stamped with the start time: a source edited while tsc ran is newer than the stamp, so the next start rebuilds.
utimesSync(STAMP, started / 1000, started / 1000);
console.log(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s (${copied} run-time assets copied)`);
