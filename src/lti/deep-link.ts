import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import { ConflictError, UnprocessableError } from "../errors.ts";
import { readableSets } from "../services/access.ts";
import type { Principal } from "../services/auth.ts";
import type { CourseService } from "../services/courses.ts";
import { CLAIM, MESSAGE } from "./claims.ts";
import { LtiError } from "./errors.ts";
import { signingKey } from "./keys.ts";

/**
 * Deep Linking 2.0 (§4.5): the instructor of a deep-linking launch picks a problem set; we create the assignment and
 * answer an LtiDeepLinkingResponse JWT signed with the tool's key, carrying one ltiResourceLink whose custom
 * `assignment_id` makes the link's later launches open that assignment, and whose lineItem tells the platform
 * to make a gradebook column of the set's total points.
 */
interface DeepLinkRequest {
  platformId: string;
  deploymentId: string;
  returnUrl: string;
  acceptTypes: string[];
  data?: unknown;
}

export interface DeepLinkInput {
  problemSet: string;
  problem?: string;
  title?: string;
}

/** The response JWT lives this long: the browser posts it to the platform at once. */
const RESPONSE_TTL = "5m";

export async function respondToDeepLink(
  deps: { db: Db; config: Pick<Config, "PUBLIC_URL">; courses: CourseService },
  p: Principal,
  input: DeepLinkInput,
) {
  const { db } = deps;
  const request = p.tokenId
    ? await db.auditEvent.findFirst({ where: { entityType: "api_token", entityId: p.tokenId, action: "lti.deep_link.request" } })
    : null;
  if (!request || !p.courseId || !p.userId)
    throw new LtiError("LTI_NOT_DEEP_LINKING", "Send the session token of a deep-linking launch (LtiDeepLinkingRequest).", 403);
  const dl = request.data as unknown as DeepLinkRequest;
  if (!dl.acceptTypes.includes("ltiResourceLink"))
    throw new LtiError("LTI_DEEP_LINK_TYPE", `The platform accepts ${dl.acceptTypes.join(", ") || "nothing"}, not ltiResourceLink.`, 422);
  const platform = await db.ltiPlatform.findUnique({ where: { id: dl.platformId } });
  if (!platform || platform.disabledAt) throw new LtiError("LTI_PLATFORM_DISABLED", "This platform's registration is disabled.", 403);

  // The set as this instructor may see it; the problem, if one is named, must be in its latest revision.
  const set = await db.problemSet.findFirst({
    where: { AND: [{ slug: input.problemSet }, await readableSets(db, p)] },
    include: { revisions: { orderBy: { revision: "desc" }, take: 1, include: { problems: { orderBy: { position: "asc" } } } } },
  });
  const problems = set?.revisions[0]?.problems ?? [];
  if (input.problem && set && !problems.some((x) => x.slug === input.problem))
    throw new UnprocessableError("UNKNOWN_PROBLEM", `Problem set '${input.problemSet}' has no problem '${input.problem}'.`, {
      field: "problem",
    });

  // One response per deep-linking launch: a second post (a double click) would make a second assignment.
  return db.$transaction(
    async (tx) => {
      await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${`lti-dl:${p.tokenId}`})::bigint)`;
      const used = await tx.auditEvent.findFirst({
        where: { entityType: "api_token", entityId: p.tokenId!, action: "lti.deep_link.response" },
      });
      if (used)
        throw new ConflictError("LTI_DEEP_LINK_USED", "This deep-linking launch already returned an item; launch deep linking again.");

      const assignment = await deps.courses.createAssignment(p, p.courseId!, { problemSet: input.problemSet, title: input.title });
      const revisionProblems = await tx.problem.findMany({ where: { revision: { assignments: { some: { id: assignment.id } } } } });
      const scoreMaximum = revisionProblems.reduce((t, x) => t + x.points, 0);
      const problem = input.problem ? revisionProblems.find((x) => x.slug === input.problem) : undefined;
      const title = problem ? `${assignment.title}: ${problem.title}` : assignment.title;

      const item = {
        type: "ltiResourceLink",
        title,
        url: `${deps.config.PUBLIC_URL.replace(/\/$/, "")}/lti/launch`,
        custom: { assignment_id: assignment.id, ...(input.problem ? { problem: input.problem } : {}) },
        lineItem: { scoreMaximum, label: assignment.title, resourceId: assignment.id, tag: "autograder" },
      };
      const { kid, privateKey } = await signingKey(db);
      const jwt = await new SignJWT({
        nonce: randomBytes(16).toString("base64url"),
        [CLAIM.messageType]: MESSAGE.deepLinkingResponse,
        [CLAIM.version]: "1.3.0",
        [CLAIM.deploymentId]: dl.deploymentId,
        [CLAIM.dlContentItems]: [item],
        ...(dl.data !== undefined ? { [CLAIM.dlData]: dl.data } : {}),
      })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(platform.clientId)
        .setAudience(platform.issuer)
        .setIssuedAt()
        .setExpirationTime(RESPONSE_TTL)
        .sign(privateKey);

      await tx.auditEvent.create({
        data: {
          actorId: p.userId,
          action: "lti.deep_link.response",
          entityType: "api_token",
          entityId: p.tokenId!,
          data: { assignmentId: assignment.id, scoreMaximum, platformId: platform.id, kid },
        },
      });
      return { returnUrl: dl.returnUrl, jwt, assignmentId: assignment.id };
    },
    { timeout: 15_000 },
  );
}
