import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { Db, Prisma } from "../db.ts";

/**
 * The tool's RSA signing keys (LtiKey rows). The newest key without `retiredAt` signs; a rotated-out key gets a
 * `retiredAt` in the future and stays published in the JWKS until then, so platforms that cached the JWKS, and JWTs
 * signed just before the rotation, still verify. The private half never leaves this module except as a CryptoKey.
 */
export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

/** One advisory lock for creating and rotating keys, so two instances starting at once make one key, not two. */
const KEY_LOCK = 0x4c54494b; // "LTIK"
const imported = new Map<string, CryptoKey>();

const activeKey = (db: Db | Prisma.TransactionClient) =>
  db.ltiKey.findFirst({ where: { retiredAt: null }, orderBy: [{ createdAt: "desc" }, { kid: "asc" }] });

/** The key that signs now (deep-linking responses, L2's client assertions); made on first need. */
export async function signingKey(db: Db): Promise<SigningKey> {
  const row = (await activeKey(db)) ?? (await withKeyLock(db, async (tx) => (await activeKey(tx)) ?? (await insertKey(tx))));
  let privateKey = imported.get(row.kid);
  if (!privateKey) {
    privateKey = (await importJWK(row.privateJwk as JWK, "RS256")) as CryptoKey;
    imported.set(row.kid, privateKey);
  }
  return { kid: row.kid, privateKey };
}

/** Public keys only: every key that signs now or is inside its grace period. */
export async function publicJwks(db: Db, now = new Date()): Promise<{ keys: JWK[] }> {
  await signingKey(db); // a platform may fetch the JWKS before the tool ever signed: publish the key it will use
  const rows = await db.ltiKey.findMany({
    where: { OR: [{ retiredAt: null }, { retiredAt: { gt: now } }] },
    orderBy: { createdAt: "desc" },
  });
  return { keys: rows.map((r) => publicOnly(r.publicJwk as JWK)) };
}

/**
 * A new key signs from now on; the keys it replaces stay published for `graceHours`, then drop out of the JWKS. A
 * key still inside an earlier, longer grace period is cut to this one: graceHours 0 after a leak removes every old key.
 */
export async function rotateKeys(db: Db, graceHours: number, actorId: string | null) {
  const retiredAt = new Date(Date.now() + graceHours * 3_600_000);
  return withKeyLock(db, async (tx) => {
    const affected = { OR: [{ retiredAt: null }, { retiredAt: { gt: retiredAt } }] };
    const old = await tx.ltiKey.findMany({ where: affected, select: { kid: true }, orderBy: { createdAt: "desc" } });
    await tx.ltiKey.updateMany({ where: affected, data: { retiredAt } });
    const key = await insertKey(tx);
    await tx.auditEvent.create({
      data: {
        actorId,
        action: "lti.key.rotate",
        entityType: "lti_key",
        entityId: key.kid,
        data: { retired: old.map((k) => k.kid), graceHours },
      },
    });
    return { kid: key.kid, retiring: old.map((k) => ({ kid: k.kid, retiredAt })) };
  });
}

export async function listKeys(db: Db, now = new Date()) {
  const rows = await db.ltiKey.findMany({ orderBy: { createdAt: "desc" }, select: { kid: true, createdAt: true, retiredAt: true } });
  const signing = rows.find((r) => r.retiredAt === null)?.kid;
  return rows.map((r) => ({
    ...r,
    status: (r.kid === signing ? "signing" : r.retiredAt === null || r.retiredAt > now ? "published" : "retired") as
      "signing" | "published" | "retired",
  }));
}

/** RFC 7517 public members of an RSA key, whatever else the stored JWK holds. */
function publicOnly(jwk: JWK): JWK {
  return { kty: jwk.kty, n: jwk.n, e: jwk.e, kid: jwk.kid, alg: "RS256", use: "sig" };
}

async function insertKey(tx: Prisma.TransactionClient) {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { modulusLength: 2048, extractable: true });
  const pub = await exportJWK(publicKey);
  // The RFC 7638 thumbprint: a kid that names exactly this key and can never collide with another one.
  const kid = await calculateJwkThumbprint(pub);
  const priv = await exportJWK(privateKey);
  return tx.ltiKey.create({
    data: {
      kid,
      publicJwk: publicOnly({ ...pub, kid }) as Prisma.InputJsonObject,
      privateJwk: { ...priv, kid, alg: "RS256" } as Prisma.InputJsonObject,
    },
  });
}

function withKeyLock<T>(db: Db, fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(${KEY_LOCK}::bigint)`;
    return fn(tx);
  });
}
