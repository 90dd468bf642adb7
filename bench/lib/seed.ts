/**
 * Seeds a course through the real API, as an operator would: users and their tokens, a course, enrolments, a
 * problem set (uploaded bundle or one loaded from problems/), and an open assignment without an attempt limit.
 */
import { choiceBundle } from "../../tests/helpers/set-bundles.ts";
import { multipart } from "../../tests/helpers/bundles.ts";
import { ADMIN_TOKEN } from "./platform.ts";

export interface Person {
  id: string;
  token: string;
}

export interface Seeded {
  courseId: string;
  assignmentId: string;
  instructor: Person;
  students: Person[];
}

export async function api(base: string, method: string, path: string, token: string, body?: unknown, expect = [200, 201]) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body instanceof FormData || body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body instanceof FormData ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** A one-problem `choice` set (problem `pick`, answer {selected: ["red"]} is right), uploaded by `token`'s owner. */
export async function uploadChoiceSet(base: string, adminToken: string, slug: string): Promise<void> {
  const bundle = await choiceBundle(slug, { correct: ["red"] });
  await api(base, "POST", "/v1/problem-sets", adminToken, multipart("bundle", "set.tar.gz", bundle));
}

/**
 * `students` enrolled students with a token each, an instructor, and an assignment of `problemSet` (uploaded first
 * as a choice set when `upload` is set). The bootstrap ADMIN_TOKEN retires once an admin holds a token, so an
 * admin user is made first and used from then on.
 */
export async function seedCourse(
  base: string,
  opts: { students: number; problemSet: string; upload?: boolean; course?: string },
): Promise<Seeded & { adminToken: string }> {
  const course = opts.course ?? "bench";
  const mkUser = async (email: string, token: string, role?: string): Promise<Person> => {
    const u = await api(base, "POST", "/v1/users", token, { email, name: email.split("@")[0], role });
    const t = await api(base, "POST", `/v1/users/${u.id}/tokens`, token, { name: "bench" });
    return { id: u.id, token: t.token };
  };
  const admin = await mkUser(`admin-${course}@example.org`, ADMIN_TOKEN, "admin");
  const instructor = await mkUser(`prof-${course}@example.org`, admin.token);
  const c = await api(base, "POST", "/v1/courses", admin.token, { slug: course, title: course });
  await api(base, "PUT", `/v1/courses/${c.id}/enrollments/${instructor.id}`, admin.token, { role: "instructor" });
  // The instructor uploads it: a set is visible to its owner (an admin's upload would be invisible to the course's staff).
  if (opts.upload) await uploadChoiceSet(base, instructor.token, opts.problemSet);
  const students = await mapLimit(
    Array.from({ length: opts.students }, (_, i) => i),
    8,
    async (i) => {
      const s = await mkUser(`student${i}-${course}@example.org`, admin.token);
      await api(base, "PUT", `/v1/courses/${c.id}/enrollments/${s.id}`, instructor.token, { role: "student" });
      return s;
    },
  );
  const a = await api(base, "POST", `/v1/courses/${c.id}/assignments`, instructor.token, { problemSet: opts.problemSet, title: "bench" });
  return { adminToken: admin.token, courseId: c.id, assignmentId: a.id, instructor, students };
}

export const CHOICE_ANSWER = JSON.stringify({ answer: { selected: ["red"] } });

/**
 * Seeds through an API process of its own with the rate limit off (an admin creating a thousand students would
 * otherwise meet the per-token limit), then stops it, so the measured processes start with their defaults.
 */
export async function seedWithUnlimitedApi(env: Record<string, string>, opts: Parameters<typeof seedCourse>[1]) {
  const { startPlatform } = await import("./platform.ts");
  const api = await startPlatform("seeding-api", "api", { ...env, RATE_LIMIT_PER_MIN: "0" });
  try {
    return { seeded: await seedCourse(api.url, opts), startupMs: api.startupMs };
  } finally {
    await api.stop();
  }
}
