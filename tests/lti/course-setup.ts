/**
 * An LMS course wired to the tool through real launches, for the passback, AGS and roster tests: the emulator's
 * instructor launches (course + LTI context made by the tool), an admin assigns a two-problem set, and students
 * launch the assignment's resource link (LTI identity, enrolment, link). Nothing is written to the database directly.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { tarGzOf } from "../helpers/bundles.ts";
import { uploadBundle } from "../helpers/set-bundles.ts";
import { ROLES, type Platform } from "./platform.ts";
import { launch, type Tool } from "./tool.ts";

/** Problem `a` is worth 2 points (answer "yes"), `b` 3 points (answer "yes"): totals 0, 2, 3 or 5 of 5. */
export async function twoProblemSet(slug: string): Promise<Buffer> {
  const tmp = await mkdtemp(path.join(tmpdir(), "lti-set-"));
  try {
    const dir = path.join(tmp, slug);
    await writeFile(await mkdirFile(dir, "set.yaml"), `slug: ${slug}\ntitle: ${slug}\nproblems: [a, b]\n`);
    for (const [p, points] of [
      ["a", 2],
      ["b", 3],
    ] as const) {
      await writeFile(
        await mkdirFile(path.join(dir, p), "problem.yaml"),
        `title: ${p}\npoints: ${points}\nstatement: Say yes.\ngrader:\n  type: choice\n  options: [{ id: "yes", text: "yes" }, { id: "no", text: "no" }]\n  correct: ["yes"]\n  multiple: false\n`,
      );
    }
    return await tarGzOf(dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function mkdirFile(dir: string, file: string) {
  await mkdir(dir, { recursive: true });
  return path.join(dir, file);
}

export interface LtiCourse {
  contextId: string;
  courseId: string;
  assignmentId: string;
  instructorToken: string;
  resourceLinkId: string;
}

/** Instructor launch → course; admin uploads and assigns the set (title `title`). */
export async function ltiCourse(tool: Tool, platform: Platform, contextId: string, title: string): Promise<LtiCourse> {
  const prof = await launch(tool, platform, {
    claims: platform.launchClaims({ sub: `prof-${contextId}`, roles: [ROLES.instructor], contextId }),
  });
  if (prof.status !== 200) throw new Error(`instructor launch: ${prof.status} ${prof.text}`);
  const courseId = String(prof.json.courseId);
  const slug = `lti-${contextId}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const up = await uploadBundle(tool.h, tool.world.adminToken, await twoProblemSet(slug));
  if (up.statusCode !== 201) throw new Error(`upload: ${up.statusCode} ${up.body}`);
  const res = await tool.h.call("POST", `/v1/courses/${courseId}/assignments`, {
    token: tool.world.adminToken,
    body: { problemSet: slug, title },
  });
  if (res.statusCode !== 201) throw new Error(`assignment: ${res.statusCode} ${res.body}`);
  return {
    contextId,
    courseId,
    assignmentId: res.json().id,
    instructorToken: String(prof.json.token),
    resourceLinkId: `link-${contextId}`,
  };
}

/** A student's launch of the assignment's link: their session token and user id. */
export async function studentLaunch(tool: Tool, platform: Platform, c: LtiCourse, sub: string) {
  const claims = platform.launchClaims({
    sub,
    contextId: c.contextId,
    resourceLinkId: c.resourceLinkId,
    custom: { assignment_id: c.assignmentId },
  });
  const res = await launch(tool, platform, { claims });
  if (res.status !== 200) throw new Error(`student launch: ${res.status} ${res.text}`);
  return { token: String(res.json.token), userId: String(res.json.userId) };
}

export async function submit(tool: Tool, token: string, assignmentId: string, problem: "a" | "b", choice: "yes" | "no") {
  const res = await tool.h.call("POST", `/v1/assignments/${assignmentId}/problems/${problem}/submissions`, {
    token,
    body: { answer: { selected: [choice] } },
  });
  if (res.statusCode !== 202) throw new Error(`submit: ${res.statusCode} ${res.body}`);
  return String(res.json().id);
}

/** Polls until `check` returns something truthy. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
