import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { newTokenSecret, sha256 } from "../lib/crypto.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import type { CourseRole } from "../services/access.ts";
import { audit } from "../services/audit.ts";
import { CLAIM, MESSAGE, SCOPE } from "./claims.ts";
import { LtiError } from "./errors.ts";
import type { ValidLaunch } from "./launch.ts";
import { upsertLtiUser } from "./lti-users.ts";
import { mapLtiRoles } from "./roles.ts";

type Tx = Prisma.TransactionClient;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

export interface Provisioned {
  userId: string;
  courseId: string;
  contextRowId: string;
  role: CourseRole;
  assignmentId: string | null;
  deepLinking: boolean;
  token: string;
  tokenId: string;
  expiresAt: Date;
}

/** Serialises the first launches of one user or one context, so two at once make one row, not a unique violation. */
export const lockKey = (tx: Tx, key: string) => tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${key})::bigint)`;

/**
 * A validated launch → user, course, enrolment, resource link and a course-scoped session token, in ONE transaction
 * that also records the nonce: a replay racing the first launch fails on the nonce's key and rolls everything back.
 */
export async function provisionLaunch(db: Db, config: Pick<Config, "LTI_SESSION_HOURS">, launch: ValidLaunch): Promise<Provisioned> {
  const { platform, claims } = launch;
  const ltiRole = mapLtiRoles(claims[CLAIM.roles] as string[]);
  if (!ltiRole)
    throw new LtiError(
      "LTI_NO_COURSE_ROLE",
      "None of the launch's roles gives a role in this course (learner, instructor, TA, admin).",
      403,
      {
        roles: claims[CLAIM.roles],
      },
    );
  try {
    return await db.$transaction(async (tx) => {
      await tx.ltiNonce.create({ data: { platformId: platform.id, nonce: launch.nonce, expiresAt: launch.nonceExpiresAt } });
      if (launch.newDeployment) {
        await tx.ltiPlatform.updateMany({
          where: { id: platform.id, deploymentIds: { isEmpty: true } },
          data: { deploymentIds: [launch.deploymentId] },
        });
        await audit(
          tx,
          null,
          "lti.platform.deployment",
          { type: "lti_platform", id: platform.id },
          { deploymentId: launch.deploymentId, via: "first launch" },
        );
      }
      const userId = await upsertLtiUser(tx, platform, {
        sub: claims.sub!,
        email: str(claims.email),
        name: str(claims.name),
        givenName: str(claims.given_name),
        familyName: str(claims.family_name),
      });
      const context = await upsertContext(tx, launch);
      const role = await enrol(tx, context.courseId, userId, ltiRole);
      const assignmentId = launch.messageType === MESSAGE.resourceLink ? await linkResource(tx, launch, context) : null;

      const secret = newTokenSecret();
      const expiresAt = new Date(Date.now() + config.LTI_SESSION_HOURS * 3_600_000);
      const token = await tx.apiToken.create({
        data: {
          userId,
          name: `LTI launch (${platform.name ?? platform.issuer})`,
          kind: "session",
          tokenHash: sha256(secret),
          expiresAt,
          courseId: context.courseId,
        },
      });
      const deepLinking = launch.messageType === MESSAGE.deepLinking;
      if (deepLinking) {
        // The deep-linking request's settings, kept for the POST /lti/deep-link that this session token will make.
        const settings = obj(claims[CLAIM.dlSettings]);
        await audit(
          tx,
          userId,
          "lti.deep_link.request",
          { type: "api_token", id: token.id },
          {
            platformId: platform.id,
            deploymentId: launch.deploymentId,
            contextRowId: context.id,
            returnUrl: String(settings.deep_link_return_url),
            acceptTypes: (settings.accept_types as Prisma.InputJsonValue) ?? [],
            ...(settings.data !== undefined ? { data: settings.data as Prisma.InputJsonValue } : {}),
          },
        );
      }
      await audit(
        tx,
        userId,
        "lti.launch",
        { type: "lti_platform", id: platform.id },
        {
          messageType: launch.messageType,
          courseId: context.courseId,
          role,
          assignmentId,
          tokenId: token.id,
        },
      );
      return {
        userId,
        courseId: context.courseId,
        contextRowId: context.id,
        role,
        assignmentId,
        deepLinking,
        token: secret,
        tokenId: token.id,
        expiresAt,
      };
    });
  } catch (e) {
    const replayed =
      isUniqueViolation(e) &&
      (await db.ltiNonce.findUnique({ where: { platformId_nonce: { platformId: platform.id, nonce: launch.nonce } } })) !== null;
    if (replayed)
      throw new LtiError("LTI_NONCE_REPLAYED", "This id_token's nonce was used by an earlier launch: a replay is refused.", 401);
    throw e;
  }
}

/** The platform's context ↔ a course, created on its first launch; AGS and NRPS endpoints refreshed on each. */
async function upsertContext(tx: Tx, launch: ValidLaunch) {
  const { platform, claims } = launch;
  const ctx = obj(claims[CLAIM.context]);
  const contextId = String(ctx.id);
  const ags = obj(claims[CLAIM.ags]);
  const nrps = obj(claims[CLAIM.nrps]);
  const membershipsUrl = str(nrps.context_memberships_url);
  const lineItemsUrl = str(ags.lineitems);
  const scopes = [
    ...(Array.isArray(ags.scope) ? ags.scope.filter((s): s is string => typeof s === "string") : []),
    ...(membershipsUrl ? [SCOPE.memberships] : []),
  ];
  const title = str(ctx.title) ?? str(ctx.label);

  await lockKey(tx, `lti-context:${platform.id}:${contextId}`);
  const existing = await tx.ltiContext.findUnique({ where: { platformId_contextId: { platformId: platform.id, contextId } } });
  if (existing) {
    // A deep-linking launch often carries no AGS/NRPS claims: what an earlier launch told us stays.
    return tx.ltiContext.update({
      where: { id: existing.id },
      data: {
        deploymentId: launch.deploymentId,
        title: title ?? existing.title,
        membershipsUrl: membershipsUrl ?? existing.membershipsUrl,
        lineItemsUrl: lineItemsUrl ?? existing.lineItemsUrl,
        ...(scopes.length ? { scopes } : {}),
      },
    });
  }
  const hash = sha256(`${platform.id}:${contextId}`).slice(0, 8);
  const base = slugify(str(ctx.label) ?? title ?? "lti-course");
  const course = await tx.course.create({ data: { slug: `${base}-${hash}`, title: title ?? `LTI course ${hash}` } });
  await audit(tx, null, "course.create", { type: "course", id: course.id }, { via: "lti", platformId: platform.id, contextId });
  return tx.ltiContext.create({
    data: {
      platformId: platform.id,
      contextId,
      courseId: course.id,
      deploymentId: launch.deploymentId,
      title,
      membershipsUrl,
      lineItemsUrl,
      scopes,
    },
  });
}

const slugify = (s: string) =>
  s
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 60)
    .replace(/-+$/, "") || "lti-course";

/**
 * Roles that came from the platform follow it, up and down; a role set by hand through the API (source "api") is
 * kept as set: an admin's decision outranks what an LMS says. The role in effect is returned.
 */
export async function enrol(tx: Tx, courseId: string, userId: string, role: CourseRole): Promise<CourseRole> {
  const existing = await tx.enrollment.findUnique({ where: { courseId_userId: { courseId, userId } } });
  if (!existing) {
    await tx.enrollment.create({ data: { courseId, userId, role, source: "lti" } });
    return role;
  }
  if (existing.source === "api" || (existing.role === role && existing.source === "lti")) return existing.role;
  await tx.enrollment.update({ where: { courseId_userId: { courseId, userId } }, data: { role, source: "lti" } });
  return role;
}

/**
 * The resource link ↔ an assignment: a deep-linked item carries `custom.assignment_id`; a link seen before keeps its
 * assignment. An id from another course (a copied LMS course) is ignored: links never open other courses' work.
 */
async function linkResource(tx: Tx, launch: ValidLaunch, context: { id: string; courseId: string }): Promise<string | null> {
  const { platform, claims } = launch;
  const resourceLinkId = String(obj(claims[CLAIM.resourceLink]).id);
  const custom = obj(claims[CLAIM.custom]);
  const key = { platformId_resourceLinkId: { platformId: platform.id, resourceLinkId } };
  const existing = await tx.ltiResourceLink.findUnique({ where: key });
  const candidates = [str(custom.assignment_id), existing?.assignmentId ?? undefined].filter((c): c is string => !!c && UUID.test(c));
  let assignmentId: string | null = null;
  for (const id of candidates) {
    const a = await tx.assignment.findFirst({ where: { id, courseId: context.courseId }, select: { id: true, lmsAssignmentId: true } });
    if (!a) continue;
    assignmentId = a.id;
    // Canvas substitutes $Canvas.assignment.id (see /lti/config.json): the export columns can name the LMS's assignment.
    const lmsId = str(custom.canvas_assignment_id);
    if (lmsId && /^\d+$/.test(lmsId) && !a.lmsAssignmentId)
      await tx.assignment.update({ where: { id: a.id }, data: { lmsAssignmentId: lmsId } });
    break;
  }
  await tx.ltiResourceLink.upsert({
    where: key,
    create: { platformId: platform.id, resourceLinkId, assignmentId, contextRowId: context.id },
    update: { assignmentId, contextRowId: context.id },
  });
  return assignmentId;
}
