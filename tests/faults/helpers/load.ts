import { randomUUID } from "node:crypto";
import { multipart, tarGzOf } from "../../helpers/bundles.ts";
import { ADMIN_TOKEN } from "./cluster.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Answers to the grader-zoo fixture with the score each must get (points from its problem.yaml). */
export const ANSWERS = [
  { problem: "single-choice", answer: { selected: ["red"] }, score: 2 },
  { problem: "single-choice", answer: { selected: ["dog"] }, score: 0 },
  { problem: "multi-choice", answer: { selected: ["2", "3", "5"] }, score: 4 },
  { problem: "multi-choice", answer: { selected: ["2", "3"] }, score: 2.666667 }, // partial: 2 of 3 right
  { problem: "multi-choice", answer: { selected: ["2", "4"] }, score: 0 }, // one right, one wrong
  { problem: "numeric-fixed", answer: { value: 3.1416 }, score: 1 },
  { problem: "numeric-fixed", answer: { value: 3 }, score: 0 },
] as const;
export type Answer = { problem: string; answer: unknown; score: number };

/**
 * Right, and about 30 ms to grade in a thread (190 terms the grader must evaluate at every sample): a worker holds
 * its lease long enough to be caught holding it (the paused-worker fault), where a choice grade takes microseconds.
 */
export const SLOW_ANSWER: Answer = {
  problem: "expression",
  answer: { expression: `1 / (H * W) + 0 * (${"sin(H) + ".repeat(190)}0)` },
  score: 2,
};

export interface World {
  baseUrl: string;
  adminToken: string;
  instructorToken: string;
  courseId: string;
  students: string[];
}

async function call(baseUrl: string, method: string, url: string, token: string, body?: unknown) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(baseUrl + url, init);
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

/** Through the API as a deployment would do it: an admin, an instructor, students, a course, the fixture set (the instructor's). */
export async function createWorld(baseUrl: string, students: number): Promise<World> {
  const mkUser = async (email: string, token: string, role?: string) => {
    const u = await call(baseUrl, "POST", "/v1/users", token, { email, name: email.split("@")[0], role });
    return { id: u.id!, token: (await call(baseUrl, "POST", `/v1/users/${u.id}/tokens`, token, { name: "faults" })).token! };
  };
  const admin = await mkUser("admin@faults.example.org", ADMIN_TOKEN, "admin");
  const instructor = await mkUser("prof@faults.example.org", admin.token);
  const course = await call(baseUrl, "POST", "/v1/courses", admin.token, { slug: "faults", title: "Faults" });
  await call(baseUrl, "PUT", `/v1/courses/${course.id}/enrollments/${instructor.id}`, admin.token, { role: "instructor" });
  const bundle = await tarGzOf("tests/fixtures/sets/grader-zoo");
  await call(baseUrl, "POST", "/v1/problem-sets", instructor.token, multipart("bundle", "grader-zoo.tar.gz", bundle));
  const tokens: string[] = [];
  for (let i = 0; i < students; i++) {
    const s = await mkUser(`student${i}@faults.example.org`, admin.token);
    await call(baseUrl, "PUT", `/v1/courses/${course.id}/enrollments/${s.id}`, instructor.token, { role: "student" });
    tokens.push(s.token);
  }
  return { baseUrl, adminToken: admin.token, instructorToken: instructor.token, courseId: course.id!, students: tokens };
}

export async function createAssignment(world: World, title: string): Promise<string> {
  return (
    await call(world.baseUrl, "POST", `/v1/courses/${world.courseId}/assignments`, world.instructorToken, {
      problemSet: "grader-zoo",
      title,
    })
  ).id!;
}

export interface Sent {
  key: string;
  student: number;
  problem: string;
  score: number;
  /** The submission id from the first 202; every retry with the same key must name the same one. */
  id?: string;
  acceptedAt?: number;
}

export interface StreamFigures {
  sent: number;
  accepted: number;
  requests: number;
  /** Answers whose retries ran out (never accepted). */
  gaveUp: number;
  /** Server errors other than a 503 in the error shape. */
  serverErrors: number;
  unavailable: number;
  /** A 503 without `{error:{code,message}}` or without Retry-After. */
  badUnavailable: number;
  networkErrors: number;
  /** 4xx answers: a retried request must never be refused. */
  refused: number;
  /** A retry with the same key that named another submission. */
  keyMismatch: number;
  problems: string[];
}

export interface StreamOptions {
  assignmentId: string;
  total: number;
  concurrency: number;
  /** Pause of each client between two answers, so the stream lasts long enough for the faults. */
  paceMs: number;
  /** How long one answer may keep retrying. */
  answerDeadlineMs?: number;
  onAccepted?: (s: Sent) => void;
  /** The answers sent in turn; ANSWERS unless a fault needs others. */
  answers?: readonly Answer[];
  /** The last answers wait for this, so the faults happen during the stream however slow the machine is. */
  tail?: { share: number; after: Promise<unknown> };
}

export interface Stream {
  sent: Sent[];
  acceptedCount(): number;
  done: Promise<StreamFigures>;
}

/**
 * Clients as a careful one should be written: every answer carries an Idempotency-Key, and on a network
 * error, a timeout or a 503 it is sent again with the same key (backoff, Retry-After honoured up to 2 s).
 */
export function startStream(world: World, opts: StreamOptions): Stream {
  const sent: Sent[] = [];
  const f: StreamFigures = {
    sent: 0,
    accepted: 0,
    requests: 0,
    gaveUp: 0,
    serverErrors: 0,
    unavailable: 0,
    badUnavailable: 0,
    networkErrors: 0,
    refused: 0,
    keyMismatch: 0,
    problems: [],
  };
  const note = (p: string) => f.problems.length < 20 && f.problems.push(p);
  let next = 0;

  async function send(s: Sent, body: unknown) {
    const url = `${world.baseUrl}/v1/assignments/${opts.assignmentId}/problems/${s.problem}/submissions`;
    const deadline = Date.now() + (opts.answerDeadlineMs ?? 120_000);
    for (let attempt = 0; ; attempt++) {
      let wait = Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      f.requests++;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${world.students[s.student]}`, "content-type": "application/json", "idempotency-key": s.key },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status === 202) {
          const id = (JSON.parse(text) as { id: string }).id;
          if (s.id && s.id !== id) {
            f.keyMismatch++;
            note(`key ${s.key}: first ${s.id}, then ${id}`);
          }
          s.id ??= id;
          s.acceptedAt ??= Date.now();
          return true;
        }
        if (res.status === 503) {
          f.unavailable++;
          let shaped = false;
          try {
            const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
            shaped = typeof e?.code === "string" && typeof e.message === "string";
          } catch {
            shaped = false;
          }
          const retryAfter = Number(res.headers.get("retry-after"));
          if (!shaped || !Number.isFinite(retryAfter)) {
            f.badUnavailable++;
            note(`503 without the error shape or Retry-After: ${text.slice(0, 200)}`);
          } else wait = Math.min(2000, Math.max(wait, retryAfter * 1000));
        } else if (res.status === 429) {
          wait = 500;
        } else if (res.status >= 500) {
          f.serverErrors++;
          note(`${res.status}: ${text.slice(0, 200)}`);
        } else {
          f.refused++;
          note(`${res.status}: ${text.slice(0, 200)}`);
          return false;
        }
      } catch {
        f.networkErrors++; // refused, reset or timed out: the same key again
      }
      if (Date.now() + wait > deadline) return false;
      await sleep(wait);
    }
  }

  async function client() {
    for (;;) {
      const i = next++;
      if (i >= opts.total) return;
      if (opts.tail && i >= opts.tail.share * opts.total) await opts.tail.after.catch(() => undefined);
      const answers = opts.answers ?? ANSWERS;
      const a = answers[i % answers.length]!;
      const s: Sent = { key: randomUUID(), student: i % world.students.length, problem: a.problem, score: a.score };
      sent.push(s);
      f.sent++;
      if (await send(s, { answer: a.answer })) {
        f.accepted++;
        opts.onAccepted?.(s);
      } else f.gaveUp++;
      await sleep(opts.paceMs * (0.5 + Math.random()));
    }
  }

  const done = Promise.all(Array.from({ length: opts.concurrency }, client)).then(() => f);
  return { sent, acceptedCount: () => f.accepted, done };
}
