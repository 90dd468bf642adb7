import { gzipSync } from "node:zlib";
import { Header } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureThreads } from "../src/grading/threads/index.ts";
import { multipart } from "./helpers/bundles.ts";
import { createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

/**
 * Hostile problem-set bundles through the real upload route. catalog.test.ts checks each tar rule
 * on the function; here every kind of attack goes through HTTP and must come back as a 422 whose
 * details name the file (and field), write nothing, and leave the API answering, also while the
 * bundle is being checked (the checks run in a grader thread with a heap cap and a time budget).
 */
let h: Harness;
let w: World;

interface Entry {
  path: string;
  body?: string | Buffer;
  type?: "File" | "SymbolicLink" | "Link";
  linkpath?: string;
}
function tgz(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const type = e.type ?? "File";
    const header = new Header({ path: e.path, type, size: type === "File" ? body.length : 0, mode: 0o644, mtime: new Date(0) });
    if (e.linkpath) header.linkpath = e.linkpath;
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (type === "File" && body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}

const numeric = (answer: string, params = "") =>
  `title: Q\npoints: 1\nstatement: Compute it.\ngrader:\n  type: numeric\n  answer: "${answer}"\n${params}`;
/** A set "evil" with one problem "q"; `extra` entries are added as they are. */
const setWith = (problem: string, extra: Entry[] = []): Buffer =>
  tgz([
    { path: "evil/set.yaml", body: "slug: evil\ntitle: Evil\nproblems: [q]\n" },
    { path: "evil/q/problem.yaml", body: problem },
    ...extra,
  ]);

/** Nine references per level, nine levels: 9^9 strings if the parser expanded every alias. */
const aliasBomb = () => {
  const lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(",")}]`,
    );
  return `${numeric("1")}${lines.join("\n")}\n`;
};

const fresh = numeric("1");
// Each check takes tens of milliseconds; together they take well past the budget on any machine.
const MANY = Array.from({ length: 1500 }, (_, i) => i);
const CASES: [name: string, bundle: () => Buffer, file: string, path: string, reason: RegExp][] = [
  [
    "a path that climbs out",
    () => setWith(fresh, [{ path: "evil/../../etc/cron.d/x", body: "x" }]),
    "evil/../../etc/cron.d/x",
    "",
    /"\.\." is not allowed/,
  ],
  ["an absolute path", () => setWith(fresh, [{ path: "/etc/passwd", body: "x" }]), "/etc/passwd", "", /absolute paths are not allowed/],
  [
    "a symbolic link",
    () => setWith(fresh, [{ path: "evil/q/data.csv", type: "SymbolicLink", linkpath: "/etc/passwd" }]),
    "evil/q/data.csv",
    "",
    /symbolic links are not allowed/,
  ],
  [
    "a hard link",
    () => setWith(fresh, [{ path: "evil/q/data.csv", type: "Link", linkpath: "evil/set.yaml" }]),
    "evil/q/data.csv",
    "",
    /hard links are not allowed/,
  ],
  [
    "a huge file (40 MiB of zeros, 40 KiB compressed)",
    () => setWith(fresh, [{ path: "evil/q/big.bin", body: Buffer.alloc(40 * 1024 * 1024) }]),
    "evil/q/big.bin",
    "",
    /40\.0 MiB, over the limit of 32\.0 MiB per file/,
  ],
  ["a YAML alias bomb", () => setWith(aliasBomb()), "q/problem.yaml", "", /alias/i],
  [
    "an allocation bomb in an instructor expression",
    () => setWith(numeric("sum(zeros(n, n))", "  params:\n    n: { choices: [50000] }\n")),
    "q/problem.yaml",
    "grader.answer",
    /zeros\(50000, 50000\) would build 2,500,000,000 elements; an expression may build at most 1,000,000/,
  ],
  [
    "a matrix product past the element limit",
    () => setWith(numeric("sum(ones(1000, 1) * ones(1, 2000))")),
    "q/problem.yaml",
    "grader.answer",
    /multiply\(<1000×1>, <1×2000>\) would build 2,000,000 elements/,
  ],
  [
    "a matrix product too expensive to evaluate",
    () => setWith(numeric("sum(ones(1000, 1000) * ones(1000, 1000))")),
    "q/problem.yaml",
    "grader.answer",
    /multiply\(<1000×1000>, <1000×1000>\) would take about 1,000,000,000 operations, past the 10,000,000 an expression may take in all/,
  ],
  [
    // Within every file limit; parsing it takes more memory than the thread may have.
    "a YAML file whose parse outgrows the thread's heap",
    () => setWith(`${numeric("1")}x: [${"1,".repeat(8_000_000)}1]\n`),
    "",
    "",
    /checking the bundle needed more than the 128 MiB a grading thread may use/,
  ],
  [
    // Each expression is within the limits; fifteen hundred of them together are not within the budget.
    "a bundle whose checks together take longer than the budget",
    () =>
      tgz([
        { path: "evil/set.yaml", body: `slug: evil\ntitle: Evil\nproblems: [${MANY.map((i) => `p${i}`).join(", ")}]\n` },
        ...MANY.map((i) => ({ path: `evil/p${i}/problem.yaml`, body: numeric(`det(ones(210, 210) + identity(210)) + ${i}`) })),
      ]),
    "",
    "",
    /checking the bundle took longer than 30 s/,
  ],
];

beforeAll(async () => {
  // A budget long enough that the heap cap, not the clock, stops the YAML case even on a loaded machine.
  h = await createHarness("hostile_bundles", { GRADER_TIMEOUT_S: "30", GRADER_THREAD_MEMORY_MB: "128", GRADER_THREADS: "2" });
  // As main.ts does: the API's bundle checks run in the process's grader threads, sized by this config.
  configureThreads(h.config);
  w = await createWorld(h, { students: 0 });
}, 60_000);
afterAll(() => h?.close());

describe("hostile bundles through POST /v1/problem-sets", () => {
  it.each(CASES)(
    "%s is refused with a 422 naming the file and field, writes nothing, and the API answers meanwhile",
    async (_, make, file, path, reason) => {
      const sets = await h.db.problemSet.count();
      const upload = h.app.inject({
        method: "POST",
        url: "/v1/problem-sets",
        headers: { authorization: `Bearer ${w.instructor.token}` },
        payload: multipart("bundle", "evil.tar.gz", make()) as any,
      });
      // The event loop stays free while the bundle is checked.
      const started = performance.now();
      expect((await h.call("GET", "/healthz")).statusCode).toBe(200);
      // Generous: it only has to show the loop is not held for the whole check.
      expect(performance.now() - started).toBeLessThan(3000);

      const res = await upload;
      expect(res.statusCode, res.body).toBe(422);
      const error = res.json().error;
      expect(error.code).toBe("INVALID_BUNDLE");
      expect(error.details).toContainEqual({ file, path, message: expect.stringMatching(reason) });
      expect(await h.db.problemSet.count()).toBe(sets);
      expect((await h.call("GET", "/v1/problem-sets", { token: w.instructor.token })).statusCode).toBe(200);
    },
    120_000,
  );

  it("an honest bundle is still accepted after all of them", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/problem-sets",
      headers: { authorization: `Bearer ${w.instructor.token}` },
      payload: multipart("bundle", "ok.tar.gz", setWith(numeric("sum(ones(3, 3)) * 2"))) as any,
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ slug: "evil", revision: 1 });
  });
});
