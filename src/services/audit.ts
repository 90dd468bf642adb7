import type { Db, Prisma } from "../db.ts";

type Tx = Db | Prisma.TransactionClient;

/** Append-only record of who changed what; written in the caller's transaction so it cannot drift from the change. */
export function audit(tx: Tx, actorId: string | null, action: string, entity: { type: string; id: string }, data?: Prisma.InputJsonValue) {
  return tx.auditEvent.create({ data: { actorId, action, entityType: entity.type, entityId: entity.id, data } });
}
