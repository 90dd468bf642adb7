import type { Prisma } from "../db.ts";
import { sha256 } from "../lib/crypto.ts";
import { audit } from "../services/audit.ts";

type Tx = Prisma.TransactionClient;

/** What a launch (id_token) or a roster (NRPS member) says about a person. */
export interface LtiPerson {
  sub: string;
  email?: string;
  name?: string;
  givenName?: string;
  familyName?: string;
}

/**
 * (platform, sub) → our user, made on first sight; shared by launches and L2's roster sync.
 * An email the platform asserts links to an existing non-admin user with that email (an instructor made through the
 * API launches into the same account). Admin accounts are never linked: a platform must not be able to become an
 * admin by claiming an address, so such a person gets a new user with a placeholder address. Without an email the
 * placeholder is `lti-<hash>@<issuer host>.invalid` (RFC 2606: can never receive mail), unique per (platform, sub).
 */
export async function upsertLtiUser(tx: Tx, platform: { id: string; issuer: string }, person: LtiPerson): Promise<string> {
  await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${`lti-user:${platform.id}:${person.sub}`})::bigint)`;
  const key = { platformId_sub: { platformId: platform.id, sub: person.sub } };
  const name = displayName(person);
  const known = await tx.ltiUser.findUnique({ where: key, include: { user: { select: { name: true } } } });
  if (known) {
    // The LMS is where names are kept: a changed name follows it; the generated fallback never overwrites one.
    if (name && known.user.name !== name) await tx.user.update({ where: { id: known.userId }, data: { name } });
    return known.userId;
  }
  const email = person.email?.trim().toLowerCase() || undefined;
  const holder = email ? await tx.user.findUnique({ where: { email }, select: { id: true, role: true } }) : null;
  let userId: string;
  if (holder && holder.role !== "admin") {
    userId = holder.id;
  } else {
    const placeholder = `lti-${sha256(`${platform.id}:${person.sub}`).slice(0, 20)}@${hostOf(platform.issuer)}.invalid`;
    const user = await tx.user.create({
      data: { email: email && !holder ? email : placeholder, name: name ?? `LTI user ${person.sub.slice(0, 12)}` },
    });
    await audit(tx, null, "user.create", { type: "user", id: user.id }, { via: "lti", platformId: platform.id });
    userId = user.id;
  }
  await tx.ltiUser.create({ data: { platformId: platform.id, sub: person.sub, userId } });
  return userId;
}

function displayName(p: LtiPerson): string | undefined {
  const full = p.name?.trim() || [p.givenName, p.familyName].filter(Boolean).join(" ").trim();
  return full ? full.slice(0, 200) : undefined;
}

function hostOf(issuer: string): string {
  try {
    return new URL(issuer).hostname.replace(/[^a-z0-9.-]/gi, "") || "lti";
  } catch {
    return "lti";
  }
}
