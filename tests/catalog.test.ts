import { mkdtemp, rm, mkdir, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { create, Header } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  formatBundleErrors,
  loadAllSets,
  loadSetFromDirectory,
  loadSetFromTarGz,
  type BundleError,
  type LoadedSet,
  type LoadResult,
} from "../src/catalog/index.ts";

const PROBLEMS = join(import.meta.dirname, "..", "problems");

/** A raw tar entry, so hostile archives (links, "..", absolute paths) can be written as-is. */
interface Entry {
  path: string;
  body?: string | Buffer;
  type?: "File" | "Directory" | "SymbolicLink" | "Link" | "CharacterDevice" | "FIFO";
  linkpath?: string;
}

function tarOf(entries: Entry[], trailer = Buffer.alloc(0)): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const type = e.type ?? "File";
    const header = new Header({
      path: e.path,
      type,
      size: type === "File" ? body.length : 0,
      mode: 0o644,
      mtime: new Date(0),
      ...(e.linkpath && { linkpath: e.linkpath }),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (type === "File" && body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024), trailer]);
}

const tgz = (entries: Entry[]) => gzipSync(tarOf(entries));
/** A set folder as {relative path: text}, packed under `root/`. */
const bundle = (root: string, files: Record<string, string>) =>
  tgz(Object.entries(files).map(([p, body]) => ({ path: `${root}/${p}`, body })));

function errorsOf(r: LoadResult): BundleError[] {
  if (r.ok) throw new Error("expected errors, got a set");
  return r.errors;
}
function setOf(r: LoadResult): LoadedSet {
  if (!r.ok) throw new Error(`expected a set:\n${formatBundleErrors(r.errors).join("\n")}`);
  return r.set;
}

const choiceProblem = (title = "Pick one") => `title: ${title}
points: 2
statement: Pick **b**.
grader:
  type: choice
  options: [{ id: a, text: A }, { id: b, text: B }]
  correct: [b]
`;
const goodSet = {
  "set.yaml": "slug: tiny\ntitle: Tiny set\nproblems: [first, second]\n",
  "first/problem.yaml": choiceProblem("First"),
  "second/problem.yaml": choiceProblem("Second").replace("statement: Pick **b**.", "statement: intro.md"),
  "second/intro.md": "Choose $b$.\n",
  "second/data/table.csv": "x,y\n1,2\n",
};

describe("problems/ folder", () => {
  it("loads every set with no errors", async () => {
    const all = await loadAllSets(PROBLEMS);
    if (!all.ok) throw new Error(formatBundleErrors(all.errors).join("\n"));
    expect(all.sets.map((s) => s.slug)).toContain("dl-midterm-review");
  });

  it("dl-midterm-review loads in set.yaml's order (its content is tested in problems-*.test.ts and midterm.test.ts)", async () => {
    const set = setOf(await loadSetFromDirectory(join(PROBLEMS, "dl-midterm-review")));
    expect(set.title).toBe("Deep Learning — Mid-term review");
    expect(set.problems.length).toBeGreaterThanOrEqual(25);
    expect(set.problems.map((p) => p.position)).toEqual(set.problems.map((_, i) => i));
    expect(set.problems[0]!.slug).toBe("p1-filter-shape");
  });
});

describe("loading a bundle", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "catalog-"));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it("round-trips the real set through tar.create + gzip", async () => {
    const file = join(tmp, "set.tar.gz");
    await create({ gzip: true, cwd: PROBLEMS, file, portable: true }, ["dl-midterm-review"]);
    const fromTar = setOf(await loadSetFromTarGz(await readFile(file)));
    const fromDir = setOf(await loadSetFromDirectory(join(PROBLEMS, "dl-midterm-review")));
    expect(fromTar).toEqual(fromDir);
  }, 60_000); // the first upload starts a grader thread

  it("inlines a statement file and keeps every other file as a private asset", async () => {
    const set = setOf(await loadSetFromTarGz(bundle("tiny", goodSet)));
    expect(set).toMatchObject({ slug: "tiny", title: "Tiny set" });
    expect(set.description).toBeUndefined();
    const [first, second] = set.problems;
    expect(first).toMatchObject({ slug: "first", position: 0, points: 2, statement: "Pick **b**.", graderType: "choice" });
    expect(first!.graderConfig).toMatchObject({ correct: ["b"], multiple: false, scoring: "all-or-nothing" });
    expect(second!.statement).toBe("Choose $b$.\n");
    expect([...second!.assets.keys()]).toEqual(["data/table.csv"]);
    expect(Buffer.from(second!.assets.get("data/table.csv")!).toString()).toBe("x,y\n1,2\n");
  });

  it("ignores macOS litter and a leading ./", async () => {
    const clean = setOf(await loadSetFromTarGz(bundle("tiny", goodSet)));
    const withJunk = tgz([
      { path: "./tiny/", type: "Directory" },
      ...Object.entries(goodSet).map(([p, body]) => ({ path: `./tiny/${p}`, body })),
      { path: "./tiny/.DS_Store", body: "junk" },
      { path: "./tiny/first/._problem.yaml", body: "junk" },
      { path: "./._tiny", body: "junk" },
      { path: "__MACOSX/tiny/._set.yaml", body: "junk" },
    ]);
    expect(setOf(await loadSetFromTarGz(withJunk))).toEqual(clean);
  });

  it("reports every error of a bad bundle at once, by file and field", async () => {
    const r = await loadSetFromTarGz(
      bundle("broken", {
        "set.yaml": "slug: broken\ntitle: Broken\nproblems: [good, bad-yaml, unknown-type, bad-config, no-statement, missing, good]\n",
        "good/problem.yaml": choiceProblem(),
        "bad-yaml/problem.yaml": "title: x\npoints: [1, 2\n",
        "unknown-type/problem.yaml": choiceProblem().replace("type: choice", "type: essay"),
        "bad-config/problem.yaml": choiceProblem()
          .replace("{ id: b, text: B }", "{ id: b, txt: B }")
          .replace("points: 2", "points: 0\ncolour: red"),
        "no-statement/problem.yaml": choiceProblem().replace("statement: Pick **b**.", "statement: intro.md"),
        "unlisted/problem.yaml": choiceProblem(),
      }),
    );
    const errors = errorsOf(r);
    const at = (file: string, path: string) => errors.filter((e) => e.file === file && e.path === path);
    expect(at("bad-yaml/problem.yaml", "")[0]?.message).toMatch(/YAML syntax error at line \d+, column \d+/);
    expect(at("unknown-type/problem.yaml", "grader.type")[0]?.message).toMatch(/unknown grader type "essay".*choice.*numeric/);
    expect(at("bad-config/problem.yaml", "grader.options[1].text")).toHaveLength(1);
    expect(at("bad-config/problem.yaml", "grader.options[1].txt")[0]?.message).toMatch(/unknown key/);
    expect(at("bad-config/problem.yaml", "colour")[0]?.message).toMatch(/unknown key "colour"/);
    expect(at("bad-config/problem.yaml", "points")).toHaveLength(1);
    expect(at("no-statement/problem.yaml", "statement")[0]?.message).toMatch(/intro\.md.*not found/);
    expect(at("set.yaml", "problems[5]")[0]?.message).toMatch(/no problem folder "missing\/"/);
    expect(at("set.yaml", "problems[6]")[0]?.message).toMatch(/more than once/);
    expect(at("set.yaml", "problems")[0]?.message).toMatch(/"unlisted\/" is not listed/);
    expect(errors.some((e) => e.file.startsWith("good/"))).toBe(false);
    expect(errors).toHaveLength(10);
  });

  it("checks set.yaml itself: slug, strict keys, missing file", async () => {
    const wrong = errorsOf(
      await loadSetFromTarGz(bundle("tiny", { ...goodSet, "set.yaml": "slug: Other\ntitle: T\nowner: me\nproblems: [first, second]\n" })),
    );
    expect(wrong.map((e) => `${e.file}|${e.path}`).sort()).toEqual(["set.yaml|owner", "set.yaml|slug", "set.yaml|slug"]);
    expect(wrong.find((e) => e.path === "slug" && /folder/.test(e.message))?.message).toMatch(/must equal the set folder's name "tiny"/);

    const { "set.yaml": _, ...noSetYaml } = goodSet;
    expect(errorsOf(await loadSetFromTarGz(bundle("tiny", noSetYaml)))).toEqual([
      { file: "set.yaml", path: "", message: expect.stringMatching(/missing/) },
    ]);
  });

  it("checks statement placeholders against a randomised grader's parameters", async () => {
    const r = await loadSetFromTarGz(
      bundle("rand", {
        "set.yaml": "slug: rand\ntitle: R\nproblems: [q]\n",
        "q/problem.yaml":
          "title: Q\npoints: 1\nstatement: Compute {{a}} + {{b}}.\ngrader: {type: numeric, params: {a: {choices: [1, 2]}}, answer: a + 1}\n",
      }),
    );
    expect(errorsOf(r)).toEqual([{ file: "q/problem.yaml", path: "statement", message: expect.stringMatching(/\{\{b\}\}/) }]);
  });

  it("formats one readable line per error", async () => {
    const dir = join(tmp, "problems");
    await mkdir(join(dir, "ok-set", "q"), { recursive: true });
    await writeFile(join(dir, "ok-set", "set.yaml"), "slug: ok-set\ntitle: OK\nproblems: [q]\n");
    await writeFile(join(dir, "ok-set", "q", "problem.yaml"), choiceProblem().replace("points: 2", "points: -1"));
    const all = await loadAllSets(dir);
    if (all.ok) throw new Error("expected errors");
    expect(formatBundleErrors(all.errors)).toEqual(["ok-set/q/problem.yaml: points: Too small: expected number to be >0"]);
  });
});

describe("hostile tarballs", () => {
  const ok = Object.entries(goodSet).map(([p, body]) => ({ path: `tiny/${p}`, body }));
  const refused = async (buf: Buffer, pattern: RegExp, limits = {}) => {
    const errors = errorsOf(await loadSetFromTarGz(buf, limits));
    expect(formatBundleErrors(errors).join("\n")).toMatch(pattern);
    return errors;
  };

  it("refuses paths that climb out or are absolute", async () => {
    const errors = await refused(
      tgz([...ok, { path: "tiny/../../evil.sh", body: "x" }, { path: "/etc/cron.d/evil", body: "x" }]),
      /"\.\." is not allowed/,
    );
    expect(errors.map((e) => e.file)).toEqual(["tiny/../../evil.sh", "/etc/cron.d/evil"]);
    expect(errors[1]!.message).toMatch(/absolute paths are not allowed/);
  });

  it("refuses links and devices", async () => {
    await refused(
      tgz([...ok, { path: "tiny/first/ref.onnx", type: "SymbolicLink", linkpath: "/etc/passwd" }]),
      /symbolic links are not allowed/,
    );
    await refused(tgz([...ok, { path: "tiny/first/ref.onnx", type: "Link", linkpath: "tiny/set.yaml" }]), /hard links are not allowed/);
    await refused(tgz([...ok, { path: "tiny/first/dev", type: "CharacterDevice" }]), /device files are not allowed/);
  });

  it("stops at too many entries or too many bytes", async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ path: `tiny/first/f${i}.txt`, body: "x" }));
    await refused(tgz([...ok, ...many]), /more than 20 entries/, { maxEntries: 20 });
    await refused(tgz([...ok, { path: "tiny/first/big.bin", body: Buffer.alloc(5000) }]), /over the limit of 4\.0 KiB per file/, {
      maxFileBytes: 4096,
    });
    const some = Array.from({ length: 4 }, (_, i) => ({ path: `tiny/first/f${i}.bin`, body: Buffer.alloc(3000) }));
    await refused(tgz([...ok, ...some]), /add up to more than 9\.8 KiB/, { maxTotalBytes: 10_000 });
  });

  it("stops a decompression bomb, and never inflates what follows the end of the archive", async () => {
    // Ignored litter is never kept, but its bytes still count against the stream limit.
    const bomb = gzipSync(tarOf([...ok, { path: "__MACOSX/tiny/._big", body: Buffer.alloc(64 * 1024 * 1024) }]));
    expect(bomb.length).toBeLessThan(200_000);
    await refused(bomb, /archive expands to more than/, { maxTotalBytes: 100_000, maxEntries: 10 });

    // Inflating this trailer would break the stream limit: the reader must stop at the end marker.
    const trailer = gzipSync(tarOf(ok, Buffer.alloc(16 * 1024 * 1024)));
    expect((await loadSetFromTarGz(trailer, { maxTotalBytes: 100_000, maxEntries: 10 })).ok).toBe(true);
  });

  it("refuses what is not a gzip'd tar of one folder", async () => {
    await refused(tarOf(ok), /not a gzip file/);
    await refused(Buffer.from("PK\x03\x04 a zip file"), /not a gzip file/);
    await refused(Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 7)]), /corrupt gzip data/);
    await refused(gzipSync(Buffer.from("hello, not a tar at all".repeat(40))), /gzip data is not a tar archive/);
    await refused(tgz([...ok, { path: "other/set.yaml", body: "x" }]), /exactly one top-level folder.*2 folders: other, tiny/);
    await refused(tgz([...ok, { path: "README.md", body: "x" }]), /inside the set folder/);
    await refused(tgz([]), /exactly one top-level folder.*empty archive/);
  });
});

describe("content hash", () => {
  it("is stable, independent of entry order and source, and changes with one byte", async () => {
    const entries = Object.entries(goodSet).map(([p, body]) => ({ path: `tiny/${p}`, body }));
    const a = setOf(await loadSetFromTarGz(tgz(entries)));
    const b = setOf(await loadSetFromTarGz(tgz([...entries].reverse())));
    expect(a.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.contentHash).toBe(a.contentHash);
    const changed = setOf(await loadSetFromTarGz(bundle("tiny", { ...goodSet, "second/data/table.csv": "x,y\n1,3\n" })));
    expect(changed.contentHash).not.toBe(a.contentHash);

    const dir = join(PROBLEMS, "dl-midterm-review");
    const [d1, d2] = await Promise.all([loadSetFromDirectory(dir), loadSetFromDirectory(dir)]);
    expect(setOf(d1).contentHash).toBe(setOf(d2).contentHash);
  });
});
