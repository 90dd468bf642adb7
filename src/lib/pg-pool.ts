import pg from "pg";

/**
 * A pg pool that survives Postgres dropping its connections (restart, failover, `pg_terminate_backend`).
 * The pool's own listener covers idle connections only; a checked-out one between two queries (a
 * transaction, a prepared statement before its query) emits its error on the client, where nobody listens,
 * and an unheard 'error' event ends the process. Every client gets a listener from birth: the error
 * surfaces anyway as the failure of its next query, and the caller releases the client as broken.
 */
export function resilientPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  const ignore = () => undefined;
  pool.on("error", ignore);
  pool.on("connect", (client) => client.on("error", ignore));
  return pool;
}
