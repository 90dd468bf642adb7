import type { Config } from "../config.ts";
import type { Db, Prisma } from "../db.ts";
import { ConflictError, NotFoundError, UnprocessableError } from "../errors.ts";
import { isUniqueViolation } from "../lib/prisma-errors.ts";
import { asc, keysetArgs, toPage, type PageArgs } from "../lib/keyset.ts";
import { requireAdmin } from "../services/access.ts";
import { audit } from "../services/audit.ts";
import type { Principal } from "../services/auth.ts";

/** The LMSs that may launch the tool (LtiPlatform rows), registered by an admin or by Dynamic Registration. */
export interface PlatformInput {
  issuer: string;
  clientId: string;
  deploymentIds: string[];
  authLoginUrl: string;
  authTokenUrl: string;
  jwksUrl: string;
  name?: string;
}

type PlatformRow = NonNullable<Awaited<ReturnType<Db["ltiPlatform"]["findUnique"]>>>;
export type Platform = PlatformRow;

export const platformView = (p: PlatformRow) => ({
  id: p.id,
  issuer: p.issuer,
  clientId: p.clientId,
  deploymentIds: p.deploymentIds,
  authLoginUrl: p.authLoginUrl,
  authTokenUrl: p.authTokenUrl,
  jwksUrl: p.jwksUrl,
  name: p.name,
  registeredBy: p.registeredBy,
  createdAt: p.createdAt,
  disabledAt: p.disabledAt,
});

/** For L2 (AGS/NRPS) and the launch: the platform row, or null. A disabled one is returned too; callers decide. */
export function getPlatform(db: Db, id: string): Promise<Platform | null> {
  return db.ltiPlatform.findUnique({ where: { id } });
}

/** The platform a login initiation names: by issuer and client_id, or by issuer alone when only one is enabled. */
export async function findForLogin(db: Db, issuer: string, clientId: string | undefined): Promise<Platform[]> {
  return db.ltiPlatform.findMany({ where: { issuer, ...(clientId ? { clientId } : {}) }, orderBy: { createdAt: "asc" } });
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * https, except in development and tests or for a platform on this machine: an id_token's keys fetched over plain
 * http could be swapped by anyone on the path, and every launch would then be forgeable.
 */
export function urlProblem(value: string, config: Pick<Config, "NODE_ENV">): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute URL";
  }
  if (url.protocol === "https:") return null;
  if (url.protocol !== "http:") return "must be an https URL";
  if (config.NODE_ENV !== "production" || LOCAL_HOSTS.has(url.hostname)) return null;
  return "must use https (http is only accepted for localhost, or when NODE_ENV is not production)";
}

export function checkPlatformUrls(input: Partial<PlatformInput>, config: Pick<Config, "NODE_ENV">) {
  const errors: { field: string; message: string }[] = [];
  for (const field of ["issuer", "authLoginUrl", "authTokenUrl", "jwksUrl"] as const) {
    const value = input[field];
    if (value === undefined) continue;
    const problem = urlProblem(value, config);
    if (problem) errors.push({ field, message: problem });
  }
  if (errors.length) throw new UnprocessableError("INVALID_PLATFORM", "Some of the platform's URLs are not usable.", errors);
}

export class PlatformService {
  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, "NODE_ENV">,
  ) {}

  async register(p: Principal, input: PlatformInput, registeredBy = "api") {
    requireAdmin(p);
    return this.create(p.userId, input, registeredBy);
  }

  /** Also used by Dynamic Registration, where the platform itself (through its admin's browser) is the caller. */
  async create(actorId: string | null, input: PlatformInput, registeredBy: string) {
    checkPlatformUrls(input, this.config);
    try {
      return await this.db.$transaction(async (tx) => {
        const row = await tx.ltiPlatform.create({ data: { ...input, deploymentIds: unique(input.deploymentIds), registeredBy } });
        await audit(
          tx,
          actorId,
          "lti.platform.register",
          { type: "lti_platform", id: row.id },
          { issuer: row.issuer, clientId: row.clientId, registeredBy },
        );
        return platformView(row);
      });
    } catch (e) {
      if (isUniqueViolation(e))
        throw new ConflictError(
          "PLATFORM_EXISTS",
          `The platform '${input.issuer}' with client id '${input.clientId}' is registered already.`,
        );
      throw e;
    }
  }

  async list(p: Principal, page: PageArgs) {
    requireAdmin(p);
    const order = [asc("createdAt", "date"), asc("id")];
    const k = keysetArgs<Prisma.LtiPlatformWhereInput, Prisma.LtiPlatformOrderByWithRelationInput>(order, page);
    return toPage(await this.db.ltiPlatform.findMany(k), order, page, platformView);
  }

  /** Disabling keeps the platform's users, courses and links; its launches are refused from now on. */
  async disable(p: Principal, id: string) {
    requireAdmin(p);
    const row = await this.db.ltiPlatform.findUnique({ where: { id } });
    if (!row) throw new NotFoundError("LTI platform", id);
    if (row.disabledAt) return;
    await this.db.$transaction(async (tx) => {
      await tx.ltiPlatform.update({ where: { id }, data: { disabledAt: new Date() } });
      await audit(tx, p.userId, "lti.platform.disable", { type: "lti_platform", id });
    });
  }

  /** New deployments, changed endpoints, or `enabled: true` to take a disabled platform back. */
  async update(p: Principal, id: string, input: Partial<Omit<PlatformInput, "issuer" | "clientId">> & { enabled?: boolean }) {
    requireAdmin(p);
    checkPlatformUrls(input, this.config);
    const row = await this.db.ltiPlatform.findUnique({ where: { id } });
    if (!row) throw new NotFoundError("LTI platform", id);
    const { enabled, ...fields } = input;
    return this.db.$transaction(async (tx) => {
      const updated = await tx.ltiPlatform.update({
        where: { id },
        data: {
          ...fields,
          ...(fields.deploymentIds ? { deploymentIds: unique(fields.deploymentIds) } : {}),
          ...(enabled === undefined ? {} : { disabledAt: enabled ? null : (row.disabledAt ?? new Date()) }),
        },
      });
      await audit(tx, p.userId, "lti.platform.update", { type: "lti_platform", id }, JSON.parse(JSON.stringify(input)));
      return platformView(updated);
    });
  }
}

const unique = (xs: string[]) => [...new Set(xs)];
