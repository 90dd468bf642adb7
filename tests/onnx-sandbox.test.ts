import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withSession } from "../graders/onnx/session.ts";
import { ModelFault, type Tensor } from "../graders/onnx/types.ts";
import { planSandbox, SandboxUnavailable, findOnPath } from "../src/grading/onnx/isolation.ts";
import { createSandboxRuntime, type SandboxRuntime } from "../src/grading/onnx/runtime.ts";
import { localRuntime } from "./helpers/local-runtime.ts";

// Fixtures come from scripts/fixtures/hostile.py. Real onnxruntime in real child processes, no mocks.
const fixture = (name: string) => readFileSync(new URL(`fixtures/onnx/hostile/${name}.onnx`, import.meta.url));

// On a host where onnxruntime-node was installed with CUDA, "cuda" works and there is no fallback to see.
const ortDir = dirname(dirname(createRequire(import.meta.url).resolve("onnxruntime-node")));
const cudaInstalled = readdirSync(ortDir, { recursive: true }).some((f) => String(f).endsWith("libonnxruntime_providers_cuda.so"));

const SECRETS = {
  DATABASE_URL: "postgresql://sandbox-test@db/secret",
  REDIS_URL: "redis://sandbox-test",
  ADMIN_TOKEN: "admin-token-sandbox-test-0123456789",
  SEED_SECRET: "seed-secret-sandbox-test",
};
const savedEnv = Object.fromEntries(Object.keys(SECRETS).map((k) => [k, process.env[k]]));

function x(n: number): Tensor {
  return { dtype: "float32", dims: [n, 4], data: Float32Array.from({ length: n * 4 }, (_, i) => i - 3.5) };
}

async function fault(p: Promise<unknown>): Promise<ModelFault> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ModelFault) return e;
    throw e;
  }
  throw new Error("expected a ModelFault");
}

const runOnce = (rt: SandboxRuntime, model: Uint8Array, feeds = { x: x(2) }) => withSession(rt, model, "submission", (s) => s.run(feeds));
const busyPid = (rt: SandboxRuntime) => rt.stats().children.find((c) => c.busy)!.pid;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("ONNX sandbox runtime", () => {
  let rt: SandboxRuntime;
  const warnings: { obj: object; msg: string }[] = [];

  beforeAll(() => {
    Object.assign(process.env, SECRETS);
    rt = createSandboxRuntime({
      size: 1,
      maxChildren: 2,
      runTimeoutMs: 1500,
      loadTimeoutMs: 3000,
      logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
    });
  });

  afterAll(async () => {
    await rt.close();
    for (const [k, v] of Object.entries(savedEnv))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });

  it("runs the benign model and returns its values", async () => {
    const input = x(3);
    const out = await withSession(rt, fixture("benign"), "submission", async (s) => {
      expect(s.inputNames).toEqual(["x"]);
      expect(s.outputNames).toEqual(["y"]);
      return s.run({ x: input });
    });
    expect(out.y!.dtype).toBe("float32");
    expect(out.y!.dims).toEqual([3, 4]);
    expect(out.y!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(input.data as Float32Array, (v) => 2 * v));
    expect(rt.ortVersion).toMatch(/^1\.\d+\.\d+/);
  });

  it.skipIf(cudaInstalled)("falls back from cuda to cpu once, says so once, and reports cpu", async () => {
    for (let i = 0; i < 3; i++) {
      const provider = await withSession(rt, fixture("benign"), "reference", async (s) => s.executionProvider);
      expect(provider).toBe("cpu");
    }
    expect(warnings.filter((w) => /unavailable/.test(w.msg))).toHaveLength(1);
    expect(rt.stats().provider).toBe("cpu");
  });

  it.skipIf(cudaInstalled)("treats a provider list where nothing works as an infrastructure error", async () => {
    const cudaOnly = createSandboxRuntime({ providers: ["cuda"], size: 1, logger: { warn: () => undefined } });
    try {
      const err = await cudaOnly.open(fixture("benign"), { role: "submission" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(ModelFault);
      expect((err as Error).message).toMatch(/No execution provider works.*cuda/);
    } finally {
      await cudaOnly.close();
    }
  });

  it("kills an endless Loop at the wall-clock limit, and the next call works", async () => {
    const killedBefore = rt.stats().killed;
    const session = await rt.open(fixture("endless_loop"), { role: "submission" });
    const pid = busyPid(rt);
    const started = performance.now();
    const f = await fault(session.run({ x: x(2) }));
    expect(f.code).toBe("MODEL_TIMEOUT");
    expect(performance.now() - started).toBeLessThan(1500 + 1000);
    // The session is dead; it says so again instead of hanging.
    expect((await fault(session.run({ x: x(2) }))).code).toBe("MODEL_TIMEOUT");
    await session.close();
    await expect.poll(() => alive(pid)).toBe(false);

    const out = await runOnce(rt, fixture("benign"));
    expect(out.y!.dims).toEqual([2, 4]);
    expect(rt.stats().killed).toBe(killedBefore + 1);
    expect(rt.stats().children.map((c) => c.pid)).not.toContain(pid);
  });

  it("reports a child that dies mid-run as a crash of the model, and carries on", async () => {
    const session = await rt.open(fixture("endless_loop"), { role: "submission" });
    const pid = busyPid(rt);
    setTimeout(() => process.kill(pid, "SIGSEGV"), 200);
    const f = await fault(session.run({ x: x(2) }));
    expect(f).toMatchObject({ code: "MODEL_CRASHED", message: expect.stringMatching(/killed by SIGSEGV/) });
    await session.close();
    expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
  });

  it("reports a child stopped from outside (shutdown, OOM killer) as an infrastructure error", async () => {
    const session = await rt.open(fixture("endless_loop"), { role: "submission" });
    const pid = busyPid(rt);
    setTimeout(() => process.kill(pid, "SIGKILL"), 200);
    const err = await session.run({ x: x(2) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ModelFault);
    await session.close();
    expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
  });

  it("contains a ConstantOfShape bomb that preflight cannot see (4 GiB from a [1, 4] input)", async () => {
    const f = await fault(runOnce(rt, fixture("cos_bomb_input"), { x: x(1) }));
    expect(["MODEL_OUT_OF_MEMORY", "MODEL_CRASHED"]).toContain(f.code);
    const g = await fault(runOnce(rt, fixture("sparse_bomb")));
    expect(["MODEL_OUT_OF_MEMORY", "MODEL_CRASHED"]).toContain(g.code);
    expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
  });

  describe("with a secret next to the worker", () => {
    // Every external-data fixture points at "secret.txt" in the working directory: the worker's is the repo.
    const secret = `TOPSECRET-${randomBytes(3).toString("hex")}`;
    const secretPath = join(process.cwd(), "secret.txt");
    const leaky = ["external_initializer", "external_constant", "external_subgraph", "external_function", "external_sparse"];

    beforeAll(() => writeFileSync(secretPath, secret));
    afterAll(() => rmSync(secretPath, { force: true }));

    it("the fixtures really leak it when onnxruntime runs in the worker's directory", async () => {
      for (const name of leaky) {
        const out = await withSession(localRuntime, fixture(name), "submission", (s) => s.run({ x: x(1) }));
        expect(Buffer.from(out.leak!.data as Uint8Array).toString()).toBe(secret);
      }
    });

    it("the sandbox cannot read it: the child's working directory is empty", async () => {
      for (const name of leaky) {
        const f = await fault(runOnce(rt, fixture(name), { x: x(1) }));
        expect(f.code).toBe("MODEL_LOAD_FAILED");
        expect(f.message).not.toContain(secret);
        expect(f.message).not.toContain(process.cwd());
      }
      expect(JSON.stringify(warnings)).not.toContain(secret);
      const { pid } = rt.stats().children[0]!;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      expect(cwd).not.toBe(process.cwd());
      expect(readdirSync(cwd)).toEqual([]);
    });
  });

  it("starts children with a scrubbed environment and an address-space cap", async () => {
    const { pid } = rt.stats().children[0]!;
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    const keys = environ
      .split("\0")
      .filter(Boolean)
      .map((kv) => kv.slice(0, kv.indexOf("=")));
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(process.env[name]).toBe(value);
      expect(keys).not.toContain(name);
      expect(environ).not.toContain(value);
    }
    expect(keys).toContain("PATH");
    expect(keys).not.toContain("NODE_OPTIONS");
    expect(
      keys.filter((k) => !/^(PATH|LD_LIBRARY_PATH|CUDA_|NVIDIA_|OMP_|MKL_|OPENBLAS_|NODE_CHANNEL_|UV_THREADPOOL_SIZE$)/.test(k)),
    ).toEqual([]);
    expect(readFileSync(`/proc/${pid}/limits`, "utf8")).toMatch(/Max address space\s+2147483648\s+2147483648/);
  });

  it("lends a second child while the first is held (a reference and a submission at once)", async () => {
    const both = await withSession(rt, fixture("benign"), "reference", (ref) =>
      withSession(rt, fixture("local_function"), "submission", async (sub) => [await ref.run({ x: x(1) }), await sub.run({ x: x(1) })]),
    );
    expect(both.map((o) => Array.from(o.y!.data as Float32Array))).toEqual([
      [-7, -5, -3, -1],
      [-7, -5, -3, -1],
    ]);
    expect(rt.stats().children.length).toBeLessThanOrEqual(2);
  });

  it("runs children as the unprivileged account, without network, core dumps or unbounded processes, as it records", async () => {
    const { pid } = rt.stats().children[0]!;
    const iso = rt.isolation;
    expect(iso).toMatchObject({ memoryCapMb: 2048, core: false, nprocs: 256 });
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    if (process.getuid!() === 0 && iso.user === "nobody") {
      const passwd = readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .find((l) => l.startsWith("nobody:"))!;
      expect(uid).toBe(Number(passwd.split(":")[2]));
    } else if (process.getuid!() === 0) {
      // A checkout the account cannot read (under /root): children stay root, and the grade and the log say so.
      expect(iso.user).toBe("root");
      expect(warnings.some((w) => /cannot read/.test(w.msg))).toBe(true);
    } else expect(uid).toBe(process.getuid!());
    const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
    expect(limits).toMatch(/Max core file size\s+0\s+0/);
    expect(limits).toMatch(/Max processes\s+256\s+256/);
    // The network namespace is its own exactly when the grade says "none", and then only loopback exists.
    const own = readlinkSync(`/proc/${pid}/ns/net`) !== readlinkSync("/proc/self/ns/net");
    expect(own).toBe(iso.network === "none");
    if (own) {
      const ifaces = readFileSync(`/proc/${pid}/net/dev`, "utf8").split("\n").slice(2).filter(Boolean);
      expect(ifaces.map((l) => l.trim().split(":")[0])).toEqual(["lo"]);
    }
  });

  it("empties the exchange file when a session ends: the next student's child holds no bytes of this model", async () => {
    const model = fixture("too_many_parameters"); // 8 KB
    let pid = 0;
    await withSession(rt, model, "submission", async (s) => {
      pid = busyPid(rt);
      expect(statSync(`/proc/${pid}/fd/4`).size).toBeGreaterThanOrEqual(model.byteLength);
      await s.run({ x: x(1) });
    });
    expect(statSync(`/proc/${pid}/fd/4`).size).toBe(0);
  });

  describe("the run's AbortSignal", () => {
    it("kills a submission's child at once: the run in flight and every later call fail with MODEL_TIMEOUT", async () => {
      const ac = new AbortController();
      const session = await rt.open(fixture("endless_loop"), { role: "submission", signal: ac.signal });
      const pid = busyPid(rt);
      const started = performance.now();
      setTimeout(() => ac.abort(new Error("run budget spent")), 200);
      const f = await fault(session.run({ x: x(2) }));
      expect(f.code).toBe("MODEL_TIMEOUT");
      // Well before the model's own limit (1.5 s): the abort, not the per-batch clock, stopped it.
      expect(performance.now() - started).toBeLessThan(1000);
      expect((await fault(session.run({ x: x(2) }))).code).toBe("MODEL_TIMEOUT");
      await session.close();
      await expect.poll(() => alive(pid)).toBe(false);
      expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
    });

    it("gives a reference session the signal's reason, and refuses to open once aborted", async () => {
      const ac = new AbortController();
      const reason = new Error("grader budget spent");
      const session = await rt.open(fixture("endless_loop"), { role: "reference", signal: ac.signal });
      const pid = busyPid(rt);
      setTimeout(() => ac.abort(reason), 100);
      await expect(session.run({ x: x(2) })).rejects.toBe(reason);
      await expect(session.run({ x: x(2) })).rejects.toBe(reason);
      await session.close();
      await expect.poll(() => alive(pid)).toBe(false);
      await expect(rt.open(fixture("benign"), { role: "reference", signal: ac.signal })).rejects.toBe(reason);
      expect((await fault(rt.open(fixture("benign"), { role: "submission", signal: ac.signal }))).code).toBe("MODEL_TIMEOUT");
    });

    it("leaves a session alone when the signal never fires, and forgets it after close", async () => {
      const ac = new AbortController();
      const pid = await withSession(
        rt,
        fixture("benign"),
        "submission",
        async (s) => {
          await s.run({ x: x(1) });
          return busyPid(rt);
        },
        ac.signal,
      );
      ac.abort();
      await new Promise((r) => setTimeout(r, 100));
      expect(alive(pid)).toBe(true); // the child went back to the pool and serves the next student
      expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
    });
  });

  it("recycles a child after recycleAfter models", async () => {
    const small = createSandboxRuntime({ providers: ["cpu"], size: 1, recycleAfter: 2, logger: { warn: () => undefined } });
    try {
      const pids: number[] = [];
      for (let i = 0; i < 3; i++) await withSession(small, fixture("benign"), "submission", async () => pids.push(busyPid(small)));
      expect(pids[1]).toBe(pids[0]);
      expect(pids[2]).not.toBe(pids[0]);
      expect(small.stats()).toMatchObject({ recycled: 1, killed: 0 });
    } finally {
      await small.close();
    }
  });
});

describe("fail closed", () => {
  // A PATH with every tool the sandbox may use but prlimit.
  const dir = mkdtempSync(join(tmpdir(), "no-prlimit-"));
  for (const tool of ["setpriv", "unshare"]) {
    const found = findOnPath(tool, process.env.PATH ?? "");
    if (found) symlinkSync(found, join(dir, tool));
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = { memoryBytes: 2048 * 2 ** 20, maxProcs: 256, user: "nobody", path: dir };

  it("refuses to plan children without prlimit, unless SANDBOX_ALLOW_UNCAPPED says so (and then records no cap)", () => {
    expect(() => planSandbox({ ...base, allowUncapped: false })).toThrow(SandboxUnavailable);
    expect(() => planSandbox({ ...base, allowUncapped: false })).toThrow(
      /prlimit \(util-linux\) was not found.*SANDBOX_ALLOW_UNCAPPED=true/,
    );
    const plan = planSandbox({ ...base, allowUncapped: true });
    expect(plan.isolation).toMatchObject({ memoryCapMb: null, core: true, nprocs: null });
    expect(plan.prefix.some((p) => p.endsWith("prlimit"))).toBe(false);
  });

  it("an uncapped runtime still runs models, and says so in its isolation facts", async () => {
    const warnings: string[] = [];
    const rt = createSandboxRuntime({
      providers: ["cpu"],
      size: 1,
      allowUncapped: true,
      toolPath: dir,
      logger: { warn: (_o, m) => warnings.push(m) },
    });
    try {
      expect((await runOnce(rt, fixture("benign"))).y!.dims).toEqual([2, 4]);
      expect(rt.isolation.memoryCapMb).toBeNull();
      expect(warnings.join("\n")).toMatch(/WITHOUT a memory cap/);
      const { pid } = rt.stats().children[0]!;
      expect(readFileSync(`/proc/${pid}/limits`, "utf8")).toMatch(/Max address space\s+unlimited/);
    } finally {
      await rt.close();
    }
  });

  it("a worker without prlimit does not start: one line, exit 1", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "worker"], {
      env: { ...process.env, PATH: dir, SANDBOX_ALLOW_UNCAPPED: "false", LOG_LEVEL: "warn" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    const lines = `${r.stdout}${r.stderr}`.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^The grading worker cannot start: prlimit \(util-linux\) was not found on PATH/);
  });
});
