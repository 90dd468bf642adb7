import { randomUUID } from "node:crypto";
import type { Db, Prisma } from "../db.ts";
import { AppError, ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { readableSets } from "./access.ts";
import { audit } from "./audit.ts";
import type { Principal } from "./auth.ts";

type Tx = Prisma.TransactionClient;

/** Locks the set's row until the transaction ends, so that uploads and owner changes of one slug take turns. */
async function lockSet(tx: Tx, slug: string) {
  const rows = await tx.$queryRaw<{ id: string; deployment: boolean }[]>`
    SELECT "id", "deployment" FROM "ProblemSet" WHERE "slug" = ${slug} FOR UPDATE`;
  return rows[0] ?? null;
}

const owned = (slug: string, whose: string) =>
  new AppError(
    403,
    "PROBLEM_SET_OWNED",
    `Problem set '${slug}' ${whose}, so this upload was refused and nothing was stored. ` +
      "To use your own variant, upload it under a new slug (rename the set folder and `slug` in set.yaml).",
    { slug },
  );

/**
 * Takes the slug for a save inside the caller's transaction and returns the set's id. A new slug is created with its
 * uploader as owner; of two first uploads racing for one slug exactly one creates it, because the second insert waits
 * for the first to commit and then does nothing. An existing slug is locked and needs an owner or an admin
 * (a deployment set: an admin). The deployment's own folder may always revise, and marks the set as the deployment's.
 */
export async function claimSlug(tx: Tx, slug: string, source: "directory" | "upload", actor: Principal | null): Promise<{ id: string }> {
  const deployment = source === "directory";
  const { count } = await tx.problemSet.createMany({ data: [{ id: randomUUID(), slug, deployment }], skipDuplicates: true });
  const set = await lockSet(tx, slug);
  if (!set) throw new Error(`problem set '${slug}' vanished while being saved`);
  if (count === 1) {
    if (!deployment && actor?.userId) await tx.problemSetOwner.create({ data: { problemSetId: set.id, userId: actor.userId } });
    return set;
  }
  if (deployment) {
    if (!set.deployment) await tx.problemSet.update({ where: { id: set.id }, data: { deployment: true } });
    return set;
  }
  if (actor?.role === "admin") return set;
  if (set.deployment) throw owned(slug, "belongs to this deployment's catalog: only an admin may revise it");
  const owner = actor?.userId
    ? await tx.problemSetOwner.findUnique({ where: { problemSetId_userId: { problemSetId: set.id, userId: actor.userId } } })
    : null;
  if (!owner) throw owned(slug, "belongs to other instructors: only its owners or an admin may revise it");
  return set;
}

/** Owners page oldest first (src/lib/keyset.ts); the user id is unique within a set. */
const OWNER_ORDER = [asc("createdAt", "date"), asc("userId")];
const withUser = { user: { select: { name: true, email: true } } } as const;
type OwnerRow = Prisma.ProblemSetOwnerGetPayload<{ include: typeof withUser }>;
const ownerView = (o: OwnerRow) => ({
  userId: o.userId,
  name: o.user.name,
  email: o.user.email,
  addedById: o.addedById,
  createdAt: o.createdAt,
});

/** Who may revise an uploaded set: its owners manage the list, admins override; the last owner stays. */
export class SetOwnerService {
  constructor(private readonly db: Db) {}

  /** 404 when the caller may not read the set (existence stays hidden), 403 when they may read it but do not own it. */
  private async managed(p: Principal, slug: string) {
    const set = await this.db.problemSet.findFirst({
      where: { AND: [{ slug }, await readableSets(this.db, p)] },
      select: { id: true, deployment: true },
    });
    if (!set) throw new NotFoundError("Problem set", slug);
    if (p.role === "admin") return set;
    const own = p.userId
      ? await this.db.problemSetOwner.findUnique({ where: { problemSetId_userId: { problemSetId: set.id, userId: p.userId } } })
      : null;
    if (!own) throw new ForbiddenError(`Only the owners of '${slug}' or an admin may see or change its owners.`);
    return set;
  }

  async list(p: Principal, slug: string, page: PageArgs) {
    const set = await this.managed(p, slug);
    const k = keysetArgs<Prisma.ProblemSetOwnerWhereInput, Prisma.ProblemSetOwnerOrderByWithRelationInput>(OWNER_ORDER, page);
    const rows = await this.db.problemSetOwner.findMany({
      where: { AND: [{ problemSetId: set.id }, k.where] },
      orderBy: k.orderBy,
      take: k.take,
      include: withUser,
    });
    return toPage(rows, OWNER_ORDER, page, ownerView);
  }

  async add(p: Principal, slug: string, userId: string) {
    const set = await this.managed(p, slug);
    if (set.deployment)
      throw new ConflictError("DEPLOYMENT_SET", `'${slug}' belongs to this deployment: only admins revise it, so it takes no owners.`);
    if (!(await this.db.user.findUnique({ where: { id: userId }, select: { id: true } }))) throw new NotFoundError("User", userId);
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.problemSetOwner.createMany({
        data: [{ problemSetId: set.id, userId, addedById: p.userId }],
        skipDuplicates: true,
      });
      if (count) await audit(tx, p.userId, "problem_set.owner.add", { type: "problem_set", id: set.id }, { userId });
      return ownerView(
        await tx.problemSetOwner.findUniqueOrThrow({ where: { problemSetId_userId: { problemSetId: set.id, userId } }, include: withUser }),
      );
    });
  }

  async remove(p: Principal, slug: string, userId: string) {
    const set = await this.managed(p, slug);
    await this.db.$transaction(async (tx) => {
      // Two owners removing each other at once must not leave the set with none: the lock makes them take turns.
      await lockSet(tx, slug);
      const owners = await tx.problemSetOwner.findMany({ where: { problemSetId: set.id }, select: { userId: true } });
      if (!owners.some((o) => o.userId === userId)) throw new NotFoundError(`Owner of '${slug}'`, userId);
      if (owners.length === 1)
        throw new ConflictError("LAST_OWNER", `'${userId}' is the last owner of '${slug}'; add another owner before removing this one.`);
      await tx.problemSetOwner.delete({ where: { problemSetId_userId: { problemSetId: set.id, userId } } });
      await audit(tx, p.userId, "problem_set.owner.remove", { type: "problem_set", id: set.id }, { userId });
    });
  }
}
