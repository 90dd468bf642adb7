import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SandboxPlan } from "./isolation.ts";

/**
 * Child processes that run onnxruntime for the worker: each in an empty temporary working directory,
 * with a scrubbed environment and an address-space cap. A child serves its requests one at a time, in
 * order; a caller may queue the next one before the answer to the last (a grader sends batch b+1 while
 * b runs), which keeps the round trip to this process off the child's critical path. The pool keeps
 * `size` children warm, lends them out, replaces the ones that die, are killed or have served enough models.
 *
 * Requests and replies travel on the IPC channel (v8 serialization). The bytes going in (the model,
 * input tensors) do not: this process writes them into an unlinked temporary file (the page cache)
 * and the request says where; the child reads them with one pread on its fd 4, a read-only descriptor
 * of that file, into a buffer it reuses. Through the IPC socket (or any socket: ~200 KiB in flight) a
 * 784 KB batch cost serializer copies, reassembly of 64 KiB chunks, and a stall each time the child
 * waited for this process to refill the socket, ~0.5 ms a batch; the file costs ~0.1 ms.
 */

export interface PoolOptions {
  /** Children kept started and idle. */
  size: number;
  /** Upper bound while callers wait (a grader may hold a reference and a submission session at once). */
  maxChildren: number;
  recycleAfter: number;
  acquireTimeoutMs: number;
  startTimeoutMs: number;
  /** How children are started (memory cap, account, network): decided once by isolation.ts. */
  plan: SandboxPlan;
  /** Environment variables passed through to children; everything else (secrets, NODE_OPTIONS) is dropped. */
  passEnv: readonly string[];
  childScript: string;
  ortEntry: string;
  logger: { warn(obj: object, msg: string): void };
  /** Runs on each new child before it is lent: the first session in a process pays onnxruntime's set-up. */
  warmup?: (child: SandboxChild) => Promise<void>;
}

/** A child that ended or was killed while a request was in flight. */
export class ChildGone extends Error {
  constructor(
    readonly reason: "timeout" | "exit",
    message: string,
    readonly stderr: string,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    super(message);
  }
  /** What the runtime made of this loss; every request queued on the child gets the same answer. */
  fault?: Error;
}

interface Pending {
  id: number;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /** Where its bytes lie in the exchange file. */
  start: number;
  end: number;
}

export type Reply = { id: number; ok: true; [key: string]: unknown } | { id: number; ok: false; kind: string; error: string };

const STDERR_TAIL = 8192;

export class SandboxChild {
  readonly proc: ChildProcess;
  /** The exchange file for request bytes, open for writing here; the child has it read-only as fd 4. */
  private readonly bytesFd: number;
  private bytesEnd = 0;
  readonly pid: number;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  /** Models opened in this child; onnxruntime-node leaks across sessions, so the pool recycles at a limit. */
  models = 0;
  busy = false;
  /** Set after an allocation failure: the process may be fragmented or half-broken, so it is not lent again. */
  retire = false;
  /** The process has exited. */
  dead = false;
  /** SIGKILL sent; the exit may not have arrived yet, but the child must never be lent again. */
  killed = false;
  stderr = "";
  private seq = 0;
  /** Sent and unanswered, oldest first. Only the oldest is running, so only its clock runs. */
  private queue: Pending[] = [];

  constructor(opts: PoolOptions) {
    const cwd = mkdtempSync(join(tmpdir(), "onnx-sandbox-"));
    // Empty, and not writable by the child (onnxruntime would otherwise leave files in it): any account may
    // enter and list it, which is all that the child, possibly running as another account, needs.
    chmodSync(cwd, 0o555);
    // Fewer helper threads per child (12 -> 8), so the per-account process limit leaves room for more children.
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: "2" };
    for (const key of opts.passEnv) if (process.env[key] !== undefined) env[key] = process.env[key];
    const argv = [...opts.plan.prefix, process.execPath, "--no-warnings", "--v8-pool-size=2", opts.childScript, opts.ortEntry];
    // No name and no write access on the child's side: it can read only what it is sent, and fill nothing.
    const file = join(tmpdir(), `onnx-sandbox-${randomUUID()}`);
    this.bytesFd = openSync(file, "wx", 0o600);
    const readFd = openSync(file, "r");
    unlinkSync(file);
    try {
      this.proc = spawn(argv[0]!, argv.slice(1), {
        cwd,
        env,
        stdio: ["ignore", "ignore", "pipe", "ipc", readFd],
        serialization: "advanced",
      });
    } finally {
      closeSync(readFd);
    }
    this.pid = this.proc.pid ?? -1;
    this.proc.stderr!.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-STDERR_TAIL);
    });
    this.exited = new Promise((resolve) => {
      const end = (why: string, signal: NodeJS.Signals | null = null) => {
        if (this.dead) return;
        this.dead = true;
        rmSync(cwd, { recursive: true, force: true });
        closeSync(this.bytesFd);
        this.fail(new ChildGone("exit", why, this.stderr, signal));
        resolve();
      };
      // "close" rather than "exit": by then stderr is fully read, and it may say "bad_alloc".
      this.proc.once("close", (code, signal) => end(signal ? `killed by ${signal}` : `exited with code ${code}`, signal));
      // A process that could not be spawned reports only "error".
      this.proc.once("error", (e) => end(`could not be spawned: ${e.message}`));
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const settle = (e?: Error) => {
        clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => {
        settle(new Error(`sandbox child did not start within ${opts.startTimeoutMs} ms`));
        this.kill();
      }, opts.startTimeoutMs);
      this.proc.once("error", (e) => settle(new Error(`sandbox child could not be spawned: ${e.message}`)));
      void this.exited.then(() =>
        settle(new Error(`sandbox child exited while starting: ${this.stderr.trim().slice(-500) || "no output"}`)),
      );
      this.proc.once("message", (m: { type?: string }) =>
        settle(m?.type === "ready" ? undefined : new Error("sandbox child spoke before it was ready")),
      );
    });
    this.ready.catch(() => undefined);
    this.proc.on("message", (m: Reply) => {
      const p = this.queue[0];
      if (!p || m?.id !== p.id) return;
      this.queue.shift();
      clearTimeout(p.timer);
      this.startClock();
      p.resolve(m);
    });
  }

  /**
   * One request; on timeout the child is killed with SIGKILL (onnxruntime cannot interrupt a run).
   * `bytes` go through the exchange file; the request carries each one's [position, length] there.
   */
  request(msg: Record<string, unknown>, timeoutMs: number, bytes: readonly ArrayBufferView[] = []): Promise<Reply> {
    if (this.gone) return Promise.reject(new ChildGone("exit", "the sandbox child is gone", this.stderr));
    const id = ++this.seq;
    const start = this.place(bytes.reduce((n, b) => n + b.byteLength, 0));
    const spans: [number, number][] = [];
    let end = start;
    for (const b of bytes) {
      spans.push([end, b.byteLength]);
      for (let done = 0; done < b.byteLength;)
        done += writeSync(this.bytesFd, new Uint8Array(b.buffer, b.byteOffset, b.byteLength), done, b.byteLength - done, end + done);
      end += b.byteLength;
    }
    this.bytesEnd = Math.max(this.bytesEnd, end);
    return new Promise<Reply>((resolve, reject) => {
      this.queue.push({ id, resolve, reject, timeoutMs, timer: undefined, start, end });
      if (this.queue.length === 1) this.startClock();
      this.proc.send({ ...msg, id, bytes: spans }, (err) => {
        if (err) this.fail(new ChildGone("exit", `could not reach the sandbox child: ${err.message}`, this.stderr));
      });
    });
  }

  /**
   * Back in the pool: the exchange file is emptied, so the next session (another student's) can never read
   * this one's model or inputs from it; truncated pages read back as zeros.
   */
  reset() {
    if (!this.dead && this.queue.length === 0 && this.bytesEnd > 0) {
      ftruncateSync(this.bytesFd, 0);
      this.bytesEnd = 0;
    }
  }

  get gone(): boolean {
    return this.dead || this.killed;
  }

  /** The run's budget ran out: every request waiting on this child gets `err` now, and the child dies. */
  abort(err: Error) {
    this.fail(err);
    this.kill();
  }

  kill() {
    if (this.gone) return;
    this.killed = true;
    this.proc.kill("SIGKILL");
  }

  /** The lowest position where `size` bytes overlap no unanswered request's (the child may not have read them yet). */
  private place(size: number): number {
    let at = 0;
    for (const p of [...this.queue].sort((a, b) => a.start - b.start)) {
      if (at + size <= p.start) break;
      at = Math.max(at, p.end);
    }
    return at;
  }

  /** The oldest request starts running: its wall-clock limit starts now. */
  private startClock() {
    const p = this.queue[0];
    if (!p) return;
    this.stderr = ""; // what a crash printed should be about this request, not an earlier model
    p.timer = setTimeout(() => {
      this.fail(new ChildGone("timeout", `no answer within ${p.timeoutMs} ms`, this.stderr));
      this.kill();
    }, p.timeoutMs);
  }

  private fail(e: Error) {
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }
}

interface Waiter {
  resolve: (c: SandboxChild) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Every pool not yet closed, so that process shutdown can end all children, whoever created the pool. */
const openPools = new Set<SandboxPool>();

/** Process shutdown: kills every sandbox child (warming spares included) and waits for their exits. */
export async function closeSandboxPools(): Promise<void> {
  await Promise.all([...openPools].map((p) => p.close()));
}

export class SandboxPool {
  private readonly all = new Set<SandboxChild>();
  private idle: SandboxChild[] = [];
  private readonly waiters: Waiter[] = [];
  private starting = 0;
  /** Consecutive children that failed to start: stops the pool from respawning in a tight loop. */
  private startFailures = 0;
  closed = false;
  readonly counters = { spawned: 0, recycled: 0, killed: 0 };

  constructor(private readonly opts: PoolOptions) {
    openPools.add(this);
    this.refill();
  }

  async acquire(): Promise<SandboxChild> {
    if (this.closed) throw new Error("sandbox pool is closed");
    const child = this.idle.pop();
    if (child) return this.lend(child);
    const wait = new Promise<SandboxChild>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no sandbox child became free within ${this.opts.acquireTimeoutMs} ms`));
      }, this.opts.acquireTimeoutMs);
      const waiter: Waiter = { resolve, reject, timer };
      this.waiters.push(waiter);
    });
    if (this.starting < this.waiters.length && this.all.size < this.opts.maxChildren) this.spawn();
    return this.lend(await wait);
  }

  /** Back from a caller: lent again, parked, or replaced when it is dead, retired or worn out. */
  release(child: SandboxChild) {
    child.busy = false;
    child.reset();
    if (child.gone) {
      // Killed or exited: its exit takes it out of the pool.
    } else if (child.retire || child.models >= this.opts.recycleAfter) {
      this.counters.recycled++;
      this.discard(child);
    } else this.offer(child);
    this.refill();
  }

  /** For a child that must not run anything else (timed out, misbehaving). */
  destroy(child: SandboxChild) {
    this.counters.killed++;
    this.discard(child);
    this.refill();
  }

  children(): readonly SandboxChild[] {
    return [...this.all];
  }

  waiting(): number {
    return this.waiters.length;
  }

  async close() {
    this.closed = true;
    openPools.delete(this);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error("sandbox pool is closed"));
    }
    const all = [...this.all];
    for (const c of all) c.kill();
    await Promise.all(all.map((c) => c.exited));
  }

  private lend(child: SandboxChild): SandboxChild {
    child.busy = true;
    return child;
  }

  private offer(child: SandboxChild) {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(child);
    } else if (this.all.size > this.opts.size) this.discard(child);
    else this.idle.push(child);
  }

  private discard(child: SandboxChild) {
    this.all.delete(child);
    this.idle = this.idle.filter((c) => c !== child);
    child.kill();
  }

  private refill() {
    while (!this.closed && this.startFailures === 0 && this.all.size < this.opts.size) this.spawn();
  }

  private spawn() {
    const child = new SandboxChild(this.opts);
    this.all.add(child);
    this.starting++;
    this.counters.spawned++;
    child.ready
      .then(() => this.opts.warmup?.(child))
      .then(
        () => {
          this.starting--;
          this.startFailures = 0;
          if (this.closed) child.kill();
          else if (!child.gone) this.offer(child);
        },
        (e: Error) => {
          this.starting--;
          child.kill();
          // close() kills spares that are still warming: that is the shutdown, not a child failing to start.
          if (this.closed) return;
          this.startFailures++;
          this.opts.logger.warn({ err: e.message, pid: child.pid }, "sandbox child failed to start");
          const w = this.waiters.shift();
          if (w) {
            clearTimeout(w.timer);
            w.reject(e);
          }
        },
      );
    void child.exited.then(() => {
      this.all.delete(child);
      this.idle = this.idle.filter((c) => c !== child);
      if (!child.busy) this.refill();
    });
  }
}
