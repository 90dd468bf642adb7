import { spawn } from "node:child_process";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, urlFor } from "./helpers/databases.ts";
import { ADMIN_TOKEN } from "./helpers/harness.ts";

/** Runs `tsx src/main.ts <mode>` as an operator would, with the given environment. */
function run(mode: string, env: Record<string, string>, untilMs = 20_000) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", mode], {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const timer = setTimeout(() => child.kill("SIGKILL"), untilMs);
  return {
    child,
    output: () => out,
    exited: exited.finally(() => clearTimeout(timer)),
  };
}

let database: string;
beforeAll(async () => {
  database = await createTestDatabase("startup");
});
afterAll(() => dropTestDatabase(database));

describe("starting the platform", () => {
  it("an unreachable Postgres or Redis is one clear line each, with how to start it, and no stack trace", async () => {
    const p = run("api", { DATABASE_URL: "postgresql://postgres:secret@127.0.0.1:1/x", REDIS_URL: "redis://127.0.0.1:1" });
    expect(await p.exited).toBe(1);
    const lines = p.output().trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^Postgres is not reachable at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/x\. Start it \(docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d postgres\)/,
    );
    expect(lines[1]).toMatch(
      /^Redis is not reachable at redis:\/\/127\.0\.0\.1:1\. Start it \(docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d redis\)/,
    );
    expect(p.output()).not.toContain("secret");
  });

  it("a bad setting is named", async () => {
    const p = run("api", { PORT: "not-a-port", ADMIN_TOKEN: "short" });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/PORT/);
    expect(p.output()).toMatch(/ADMIN_TOKEN must be at least 32 characters/);
    expect(p.output()).not.toMatch(/\n\s+at /);
  });

  it("a bad cache, shutdown or backpressure setting is named", async () => {
    const p = run("api", { PROBLEM_CACHE_MB: "-1", SHUTDOWN_GRACE_S: "soon", PRESSURE_MAX_RSS_MB: "lots" });
    expect(await p.exited).toBe(1);
    for (const name of ["PROBLEM_CACHE_MB", "SHUTDOWN_GRACE_S", "PRESSURE_MAX_RSS_MB"]) expect(p.output()).toContain(name);
    expect(p.output()).not.toMatch(/\n\s+at /);
  });

  it("NODE_ENV=production without SEED_SECRET refuses to start, naming it", async () => {
    const saved = process.env.SEED_SECRET;
    delete process.env.SEED_SECRET; // run() passes the test's environment on
    try {
      const p = run("api", { NODE_ENV: "production", ADMIN_TOKEN });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/SEED_SECRET: must be set when NODE_ENV=production/);
      expect(p.output()).not.toMatch(/\n\s+at /);
    } finally {
      if (saved !== undefined) process.env.SEED_SECRET = saved;
    }
  });

  it("a problem set with errors stops the start with every error listed", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "problems-"));
    await mkdir(path.join(dir, "broken/p1"), { recursive: true });
    await writeFile(path.join(dir, "broken/set.yaml"), "slug: broken\ntitle: Broken\nproblems: [p1, p2]\n");
    await writeFile(
      path.join(dir, "broken/p1/problem.yaml"),
      "title: P1\npoints: 1\nstatement: s\ngrader: { type: choice, options: [], correct: [a] }\n",
    );
    const p = run("api", { DATABASE_URL: urlFor(database), PROBLEMS_DIR: dir, PORT: "0" });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/have errors/);
    expect(p.output()).toMatch(/p1\/problem\.yaml/);
    expect(p.output()).toMatch(/p2/);
  });

  it("`all` serves the API with problems/ loaded and stops cleanly on SIGTERM", async () => {
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const p = run("all", { DATABASE_URL: urlFor(database), PORT: String(port), ADMIN_TOKEN, QUEUE_PREFIX: `startup-${port}` }, 60_000);
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 200) throw new Error(`did not become ready:\n${p.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const sets = await fetch(`${base}/v1/problem-sets`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json());
    expect(sets.map((s: { slug: string }) => s.slug)).toContain("dl-midterm-review");
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });

  it("`worker` serves its own /metrics and /healthz, and stops cleanly on SIGTERM", async () => {
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const p = run(
      "worker",
      { DATABASE_URL: urlFor(database), WORKER_METRICS_PORT: String(port), QUEUE_PREFIX: `startup-w-${port}` },
      60_000,
    );
    let metrics = "";
    for (let i = 0; !metrics; i++) {
      metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => (r.ok ? r.text() : ""),
        () => "",
      );
      if (i > 200) throw new Error(`no metrics:\n${p.output()}`);
      if (!metrics) await new Promise((r) => setTimeout(r, 100));
    }
    expect(metrics).toContain("# TYPE autograder_grading_duration_seconds histogram");
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });
});
