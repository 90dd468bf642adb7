import { LRUCache } from "lru-cache";
import { getGrader } from "../../graders/index.ts";
import { renderStatement } from "../../graders/params.ts";
import type { Grader, PrivateData } from "../../graders/types.ts";
import type { LoadedSet } from "../catalog/index.ts";
import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import type { Problem } from "../generated/prisma/client.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import { sha256, studentSeed } from "../lib/crypto.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { readableSets } from "./access.ts";
import { audit } from "./audit.ts";
import type { Principal } from "./auth.ts";
import { claimSlug, SetOwnerService } from "./set-owners.ts";

/** Large bundles write many blob bytes in one transaction; Prisma's default 5 s would abort an honest upload. */
const SAVE_TIMEOUT_MS = 60_000;

/** The list pages by slug (unique): src/lib/keyset.ts. */
const BY_SLUG = [asc("slug")];

const latestRevision = {
  revisions: { orderBy: { revision: "desc" as const }, take: 1, include: { problems: { orderBy: { position: "asc" as const } } } },
};

/** A problem ready to grade: its grader, parsed config and private files. */
export interface GradableProblem {
  id: string;
  slug: string;
  setSlug: string;
  revision: number;
  points: number;
  grader: Grader;
  config: unknown;
  privateData: PrivateData;
  /** sha256 of each private file, recorded on grades so a score can be reproduced. */
  assetHashes: Record<string, string>;
}

/** A problem's cache entry: the parsed config and which blob each private file is, not the bytes. */
type ProblemEntry = Omit<GradableProblem, "privateData">;

/** The problem a submission answers (submit path): its row, its set's slug and its grader. */
export interface CurrentProblem {
  problem: Problem;
  setSlug: string;
  grader: Grader;
}

type CacheConfig = Pick<Config, "SEED_SECRET"> & Partial<Pick<Config, "PROBLEM_CACHE_MB" | "PROBLEM_CONFIG_CACHE_MB">>;

const MB = 1024 * 1024;

export class ProblemSetService {
  readonly owners: SetOwnerService;
  /**
   * Problem revisions are immutable, so a worker keeps the ones it graded lately, within byte budgets: parsed
   * configs by problem id, and private files by blob sha256 (shared between revisions that did not change them).
   * A file larger than its whole budget is read for each grade and never kept.
   */
  readonly cache: {
    problems: LRUCache<string, ProblemEntry>;
    blobs: LRUCache<string, Uint8Array>;
    current: LRUCache<string, CurrentProblem>;
  };

  constructor(
    private readonly db: Db,
    private readonly config: CacheConfig,
  ) {
    this.owners = new SetOwnerService(db);
    this.cache = {
      problems: new LRUCache({
        maxSize: Math.max(1, Math.floor((config.PROBLEM_CONFIG_CACHE_MB ?? 32) * MB)),
      }),
      current: new LRUCache({ maxSize: Math.max(1, Math.floor((config.PROBLEM_CONFIG_CACHE_MB ?? 32) * MB)) }),
      blobs: new LRUCache({
        maxSize: Math.max(1, Math.floor((config.PROBLEM_CACHE_MB ?? 256) * MB)),
        sizeCalculation: (bytes) => Math.max(1, bytes.byteLength),
      }),
    };
  }

  /**
   * Stores a validated set as a new immutable revision, unless the latest one has the same content. A set from the
   * deployment's problems/ folder ("directory") belongs to the deployment; an uploaded new slug makes its uploader
   * the owner, in the same transaction. Revising an existing slug needs an owner or an admin (deployment sets: an
   * admin); anyone else gets 403 PROBLEM_SET_OWNED and nothing is written.
   */
  async save(set: LoadedSet, source: "directory" | "upload", actor: Principal | null) {
    try {
      return await this.db.$transaction((tx) => this.saveIn(tx, set, source, actor), { timeout: SAVE_TIMEOUT_MS });
    } catch (e) {
      if (isUniqueViolation(e)) throw new ConflictError("CONCURRENT_UPLOAD", `Another upload of '${set.slug}' is in progress; retry.`);
      throw e;
    }
  }

  /**
   * Whether `contentHash` is already the current revision of the deployment set `slug`: then loading that folder
   * again would store nothing (save answers created: false), and start-up can skip validating it.
   */
  async isCurrentDeploymentContent(slug: string, contentHash: string): Promise<boolean> {
    const latest = await this.db.problemSetRevision.findFirst({
      where: { problemSet: { slug, deployment: true } },
      orderBy: { revision: "desc" },
      select: { contentHash: true },
    });
    return latest?.contentHash === contentHash;
  }

  private async saveIn(tx: Prisma.TransactionClient, set: LoadedSet, source: "directory" | "upload", actor: Principal | null) {
    const ps = await claimSlug(tx, set.slug, source, actor);
    const latest = await tx.problemSetRevision.findFirst({
      where: { problemSetId: ps.id },
      orderBy: { revision: "desc" },
      include: { problems: { orderBy: { position: "asc" } } },
    });
    if (latest?.contentHash === set.contentHash) return { created: false, ...summary(set.slug, latest, latest.problems) };

    const blobs = new Map<string, Uint8Array>();
    for (const p of set.problems) for (const bytes of p.assets.values()) blobs.set(sha256(bytes), bytes);
    // Inserted in hash order: two uploads sharing blobs then wait on each other in one direction, never deadlock.
    if (blobs.size)
      await tx.blob.createMany({
        data: [...blobs]
          .sort(([x], [y]) => (x < y ? -1 : 1))
          .map(([hash, bytes]) => ({ sha256: hash, size: bytes.byteLength, data: bytes as Uint8Array<ArrayBuffer> })),
        skipDuplicates: true,
      });
    const revision = await tx.problemSetRevision.create({
      data: {
        problemSetId: ps.id,
        revision: (latest?.revision ?? 0) + 1,
        title: set.title,
        description: set.description ?? null,
        contentHash: set.contentHash,
        source,
        uploadedById: actor?.userId ?? null,
        problems: {
          create: set.problems.map((p) => ({
            slug: p.slug,
            position: p.position,
            title: p.title,
            points: p.points,
            statement: p.statement,
            graderType: p.graderType,
            graderConfig: p.graderConfig as object,
            assets: { create: [...p.assets].map(([path, bytes]) => ({ path, blobSha256: sha256(bytes) })) },
          })),
        },
      },
      include: { problems: { orderBy: { position: "asc" } } },
    });
    await audit(
      tx,
      actor?.userId ?? null,
      "problem_set.revision",
      { type: "problem_set", id: ps.id },
      { revision: revision.revision, source },
    );
    return { created: true, ...summary(set.slug, revision, revision.problems) };
  }

  /** Every set the caller may read, at its latest revision. */
  async list(p: Principal, page: PageArgs) {
    const k = keysetArgs<Prisma.ProblemSetWhereInput, Prisma.ProblemSetOrderByWithRelationInput>(BY_SLUG, page);
    const sets = await this.db.problemSet.findMany({
      // A set without a revision yet (an upload in progress) is not listed, and does not shorten a page.
      where: { AND: [await readableSets(this.db, p), { revisions: { some: {} } }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      include: latestRevision,
    });
    return toPage(sets, BY_SLUG, page, (s) => summary(s.slug, s.revisions[0]!, s.revisions[0]!.problems));
  }

  /** The latest revision as this caller sees it: their own numbers in randomised statements, nothing private. */
  async get(p: Principal, slug: string) {
    const set = await this.db.problemSet.findFirst({ where: { AND: [{ slug }, await readableSets(this.db, p)] }, include: latestRevision });
    const rev = set?.revisions[0];
    if (!set || !rev) throw new NotFoundError("Problem set", slug);
    return { ...summary(slug, rev, []), description: rev.description, problems: this.render(rev.problems, slug, p.userId) };
  }

  /**
   * Problems as a caller sees them (the set page and the assignment page alike): statements with the caller's own
   * numbers (their seed is per set slug and problem, so every revision shows them the same ones) and answer formats.
   */
  render(problems: Problem[], setSlug: string, userId: string | null) {
    return problems.map((problem) => {
      const grader = requireGrader(problem.graderType);
      const config = grader.configSchema.parse(problem.graderConfig);
      const seed = userId ? studentSeed(this.config.SEED_SECRET, userId, setSlug, problem.slug) : "preview";
      const params = grader.params?.(config, seed) ?? {};
      return {
        slug: problem.slug,
        title: problem.title,
        points: problem.points,
        type: problem.graderType,
        statement: renderStatement(problem.statement, params),
        answerFormat: grader.answerFormat(config, seed),
      };
    });
  }

  /**
   * The problem a new submission answers: the one of the assignment's pinned revision, never simply the latest, so
   * an upload of the set changes nothing an existing assignment serves or grades against until staff move it.
   */
  async currentProblem(assignment: { revisionId: string }, problemSlug: string) {
    // A revision's problems never change: kept by (revision, slug) within PROBLEM_CONFIG_CACHE_MB, as long as they fit.
    const key = `${assignment.revisionId}/${problemSlug}`;
    const cached = this.cache.current.get(key);
    if (cached) return cached;
    const problem = await this.db.problem.findUnique({
      where: { revisionId_slug: { revisionId: assignment.revisionId, slug: problemSlug } },
      include: { revision: { select: { problemSet: { select: { slug: true } } } } },
    });
    if (!problem) return null;
    const { revision, ...row } = problem;
    const current = { problem: row, setSlug: revision.problemSet.slug, grader: requireGrader(problem.graderType) };
    this.cache.current.set(key, current, { size: 512 + JSON.stringify(row).length });
    return current;
  }

  /** A problem ready to grade, from the cache when this process graded it lately. */
  async loadGradable(problemId: string): Promise<GradableProblem> {
    const entry = this.cache.problems.get(problemId) ?? (await this.loadEntry(problemId));
    return { ...entry, privateData: await this.privateFiles(entry.assetHashes) };
  }

  private async loadEntry(problemId: string): Promise<ProblemEntry> {
    const problem = await this.db.problem.findUniqueOrThrow({
      where: { id: problemId },
      include: { revision: { include: { problemSet: true } }, assets: { select: { path: true, blobSha256: true } } },
    });
    const grader = requireGrader(problem.graderType);
    const entry: ProblemEntry = {
      id: problem.id,
      slug: problem.slug,
      setSlug: problem.revision.problemSet.slug,
      revision: problem.revision.revision,
      points: problem.points,
      grader,
      config: grader.configSchema.parse(problem.graderConfig),
      assetHashes: Object.fromEntries(problem.assets.map((a) => [a.path, a.blobSha256])),
    };
    // Sized by the stored JSON (the parsed config is of the same order) and the asset table.
    const size = 512 + JSON.stringify(problem.graderConfig).length + JSON.stringify(entry.assetHashes).length;
    this.cache.problems.set(problemId, entry, { size });
    return entry;
  }

  /** The private files by path: cached blobs, the others read in one query (and kept while they fit). */
  private async privateFiles(assetHashes: Record<string, string>): Promise<PrivateData> {
    const found = new Map<string, Uint8Array>();
    const missing = new Set<string>();
    for (const sha of Object.values(assetHashes)) {
      const bytes = this.cache.blobs.get(sha);
      if (bytes) found.set(sha, bytes);
      else missing.add(sha);
    }
    if (missing.size) {
      const blobs = await this.db.blob.findMany({ where: { sha256: { in: [...missing] } } });
      for (const b of blobs) {
        const bytes = new Uint8Array(b.data);
        found.set(b.sha256, bytes);
        this.cache.blobs.set(b.sha256, bytes);
      }
    }
    return new Map(
      Object.entries(assetHashes).map(([path, sha]) => {
        const bytes = found.get(sha);
        if (!bytes) throw new Error(`Blob ${sha} of private file '${path}' is missing from the database`);
        return [path, bytes];
      }),
    );
  }

  async requireUploader(p: Principal) {
    if (p.role === "admin") return;
    const teaches = p.userId ? await this.db.enrollment.count({ where: { userId: p.userId, role: "instructor" } }) : 0;
    if (!teaches) throw new ForbiddenError("Only admins and course instructors may upload problem sets.");
  }
}

/** Stored problems hold configs that passed validation at upload; a grader missing now is a deployment bug. */
function requireGrader(type: string): Grader {
  const g = getGrader(type);
  if (!g) throw new Error(`Grader type '${type}' is not installed on this server`);
  return g;
}

function summary(
  slug: string,
  rev: { revision: number; title: string },
  problems: { slug: string; title: string; points: number; graderType: string }[],
) {
  return {
    slug,
    title: rev.title,
    revision: rev.revision,
    problems: problems.map((p) => ({ slug: p.slug, title: p.title, points: p.points, type: p.graderType })),
  };
}
