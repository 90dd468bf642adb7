import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOSTILE_TITLE, buildGradebook, type Gradebook } from "./helpers/gradebook-fixture.ts";
import { createHarness, type Harness } from "./helpers/harness.ts";

/**
 * Course statistics of the known gradebook (tests/helpers/gradebook-fixture.ts), every number worked out by hand:
 * on time, pick (max 2): records +1 0, Ann 2, O'Brien 2 (2nd attempt), Zoë 1.5 (override); pi (max 1): O'Brien 1,
 * Zoë 0. Late (factor 0.5): @x pick 2 → 1, +1 pi 1 → 0.5. -2 never submitted.
 */

let h: Harness;
let g: Gradebook;
const stats = (query = "", token = g.world.instructor.token) =>
  h.call("GET", `/v1/courses/${g.world.courseId}/statistics${query}`, { token });

/** 10 bins over [0, max] with the given counts per bin index. */
function bins(max: number, counts: Record<number, number>) {
  return Array.from({ length: 10 }, (_, i) => ({
    from: Math.round(((max * i) / 10) * 1e6) / 1e6,
    to: Math.round(((max * (i + 1)) / 10) * 1e6) / 1e6,
    count: counts[i] ?? 0,
  }));
}

beforeAll(async () => {
  h = await createHarness("statistics");
  h.startWorker();
  g = await buildGradebook(h);
}, 300_000);
afterAll(async () => h?.close());

describe("course statistics", () => {
  it("gives exact means, medians, histograms, attempts, wrong choices and feedback per assignment and problem", async () => {
    const res = await stats();
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.course).toEqual({ id: g.world.courseId, slug: "stats-101", title: "stats-101" });
    expect(body.students).toBe(6);
    expect(body.assignments).toEqual([
      {
        assignmentId: g.onTime,
        title: HOSTILE_TITLE,
        maxTotal: 3,
        // Totals 0 (+1), 1.5 (Zoë), 2 (Ann), 3 (O'Brien).
        total: { n: 4, mean: 1.625, median: 1.75, histogram: bins(3, { 0: 1, 5: 1, 6: 1, 9: 1 }) },
        problems: [
          {
            problem: "pick",
            title: "Pick a colour",
            type: "choice",
            maxScore: 2,
            n: 4,
            mean: 1.375,
            median: 1.75,
            histogram: bins(2, { 0: 1, 7: 1, 9: 2 }),
            attempts: { students: 4, mean: 1.25, max: 2 },
            wrongChoices: [
              { option: "dog", count: 2 },
              { option: "car", count: 1 },
            ],
            feedback: [{ message: "Incorrect.", count: 3 }],
          },
          {
            problem: "pi",
            title: "Pi",
            type: "numeric",
            maxScore: 1,
            n: 2,
            mean: 0.5,
            median: 0.5,
            histogram: bins(1, { 0: 1, 9: 1 }),
            attempts: { students: 2, mean: 1, max: 1 },
            wrongChoices: [],
            feedback: [{ message: "Not within tolerance of the expected value.", count: 1 }],
          },
        ],
      },
      {
        assignmentId: g.late,
        title: "Late work",
        maxTotal: 3,
        total: { n: 2, mean: 0.75, median: 0.75, histogram: bins(3, { 1: 1, 3: 1 }) },
        problems: [
          {
            problem: "pick",
            title: "Pick a colour",
            type: "choice",
            maxScore: 2,
            n: 1,
            mean: 1,
            median: 1,
            histogram: bins(2, { 5: 1 }),
            attempts: { students: 1, mean: 1, max: 1 },
            wrongChoices: [],
            feedback: [],
          },
          {
            problem: "pi",
            title: "Pi",
            type: "numeric",
            maxScore: 1,
            n: 1,
            mean: 0.5,
            median: 0.5,
            histogram: bins(1, { 5: 1 }),
            attempts: { students: 1, mean: 1, max: 1 },
            wrongChoices: [],
            feedback: [],
          },
        ],
      },
    ]);
    const one = (await stats(`?assignment=${g.late}`)).json();
    expect(one.assignments.map((a: { assignmentId: string }) => a.assignmentId)).toEqual([g.late]);
  });

  it("is for course staff and admins: students 403, outsiders 404, unknown format 400", async () => {
    expect((await stats("", g.users.ann.token)).statusCode).toBe(403);
    expect((await stats("", g.world.adminToken)).statusCode).toBe(200);
    const bad = await stats("?format=pdf");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain("json, html");
    const u = await h.call("POST", "/v1/users", { token: g.world.adminToken, body: { email: "nobody@example.org", name: "n" } });
    const t = await h.call("POST", `/v1/users/${u.json().id}/tokens`, { token: g.world.adminToken, body: { name: "t" } });
    expect((await stats("", t.json().token)).statusCode).toBe(404);
  });

  it("HTML: self-contained, every hostile text escaped, a CSP that allows only its own stylesheet", async () => {
    await h.db.course.update({ where: { id: g.world.courseId }, data: { title: `<script>alert("course")</script> & co` } });
    const wrong = await h.db.grade.findFirstOrThrow({ where: { submissionId: g.subs.get("zoe/onTime/pi/1")! } });
    await h.db.grade.update({
      where: { id: wrong.id },
      data: { feedback: { summary: `<img src=x onerror="alert('fb')">`, tests: [] } },
    });
    for (const url of [`/v1/courses/${g.world.courseId}/statistics?format=html`, `/v1/courses/${g.world.courseId}/grades?format=html`]) {
      const res = await h.call("GET", url, { token: g.world.instructor.token });
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["content-disposition"]).toMatch(/^inline; filename="stats-101-\d{4}-\d{2}-\d{2}-statistics\.html"$/);
      const html = res.body;
      // No markup from users: the title, the course title and the feedback appear only escaped.
      expect(html).not.toMatch(/<script|<img|onerror="/i);
      expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
      expect(html).toContain("&lt;script&gt;alert(&quot;course&quot;)&lt;/script&gt; &amp; co");
      expect(html).toContain("&lt;img src=x onerror=&quot;alert(&#39;fb&#39;)&quot;&gt;");
      // No external asset and no script at all; histograms are inline SVG (10 bars each: 2 totals + 4 problems).
      expect(html).not.toMatch(/<[^>]*\s(src|href)=/i);
      expect(html.match(/<svg /g)).toHaveLength(6);
      expect(html.match(/<rect /g)).toHaveLength(60);
      const csp = String(res.headers["content-security-policy"]);
      const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain(`style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'`);
      expect(csp).not.toContain("unsafe-inline");
    }
  });
});
