import type { Harness } from "./harness.ts";

export interface Person {
  id: string;
  token: string;
}

async function ok(res: { statusCode: number; body: string; json(): unknown }, status: number, what: string) {
  if (res.statusCode !== status) throw new Error(`${what}: expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.json() as Record<string, string>;
}

/** A user with a personal token, made through the API by an admin. */
export async function mkUser(h: Harness, adminToken: string, email: string): Promise<Person> {
  const u = await ok(await h.call("POST", "/v1/users", { token: adminToken, body: { email, name: email.split("@")[0] } }), 201, email);
  const t = await ok(await h.call("POST", `/v1/users/${u.id}/tokens`, { token: adminToken, body: { name: "test" } }), 201, email);
  return { id: u.id!, token: t.token! };
}

export async function mkCourse(h: Harness, adminToken: string, slug: string): Promise<string> {
  return (await ok(await h.call("POST", "/v1/courses", { token: adminToken, body: { slug, title: slug } }), 201, slug)).id!;
}

export async function enroll(h: Harness, adminToken: string, courseId: string, who: Person, role: "student" | "ta" | "instructor") {
  await ok(await h.call("PUT", `/v1/courses/${courseId}/enrollments/${who.id}`, { token: adminToken, body: { role } }), 200, role);
  return who;
}

export async function assign(h: Harness, token: string, courseId: string, body: Record<string, unknown>): Promise<string> {
  return (await ok(await h.call("POST", `/v1/courses/${courseId}/assignments`, { token, body }), 201, "assignment")).id!;
}
