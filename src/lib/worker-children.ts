import { fork, type ChildProcess } from "node:child_process";

type Logger = { info(obj: object, msg: string): void; error(obj: object, msg: string): void };

export interface WorkerChildren {
  /** SIGTERM to each child, then wait for it to drain (SIGKILL after `graceMs` + 20 s, as a worker's own cap). */
  stop(graceMs: number): Promise<(number | null)[]>;
}

/**
 * `npm start`'s grading workers as child processes of the API's (`main.js worker`, same Node flags and environment),
 * so the API and grading each have an event loop and a core: in one process they took turns on one. A child that
 * exits unasked is started again, waiting 1 s, then twice as long after each quick death (at most 30 s). A child
 * whose parent is gone (its IPC channel closes, even after a SIGKILL) shuts itself down: see main.ts. Grading
 * metrics are the children's own, on WORKER_METRICS_PORT + slot; the API's /metrics has the API's and the queue's.
 */
export function startWorkerChildren(count: number, metricsPort: number, log: Logger): WorkerChildren {
  const children = new Set<ChildProcess>();
  let stopping = false;

  const start = (slot: number, backoffMs: number) => {
    const startedAt = Date.now();
    // Each serves its /metrics and /healthz on a port of its own: WORKER_METRICS_PORT + slot (0 stays off).
    const env = { ...process.env, WORKER_METRICS_PORT: String(metricsPort ? metricsPort + slot : 0) };
    const child = fork(process.argv[1]!, ["worker"], { stdio: "inherit", env });
    children.add(child);
    log.info({ pid: child.pid, slot }, "grading worker process started");
    child.once("exit", (code, signal) => {
      children.delete(child);
      if (stopping) return;
      const next = Date.now() - startedAt > 60_000 ? 1000 : Math.min(backoffMs * 2, 30_000);
      log.error({ pid: child.pid, slot, code, signal, restartInMs: backoffMs }, "grading worker process exited; starting it again");
      setTimeout(() => stopping || start(slot, next), backoffMs).unref();
    });
  };
  for (let slot = 0; slot < count; slot++) start(slot, 1000);

  return {
    async stop(graceMs) {
      stopping = true;
      return Promise.all(
        [...children].map(
          (child) =>
            new Promise<number | null>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
              const kill = setTimeout(() => child.kill("SIGKILL"), graceMs + 20_000);
              child.once("exit", (code) => {
                clearTimeout(kill);
                resolve(code);
              });
              child.kill("SIGTERM");
            }),
        ),
      );
    },
  };
}
