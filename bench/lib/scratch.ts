/**
 * The baselines' scratch table: the columns of a Submission row that ingest writes (ids, slug, attempt, the answer
 * as jsonb, a 64-hex seed and request hash, status, times), so pgbench and the bare route insert a row of the same
 * size as the platform does.
 */
export const SCRATCH_DDL = `CREATE TABLE IF NOT EXISTS bench_submission (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  assignment_id uuid NOT NULL,
  user_id text NOT NULL,
  problem_slug text NOT NULL,
  attempt int NOT NULL,
  answer jsonb NOT NULL,
  seed text NOT NULL,
  request_hash text NOT NULL,
  status text NOT NULL DEFAULT 'queued',
  score double precision,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  graded_at timestamptz
)`;

const HEX64 = "0123456789abcdef".repeat(4);

/** One row's insert with $1 = user id, $2 = answer json: what the bare route runs per request. */
export const SCRATCH_INSERT = `INSERT INTO bench_submission (assignment_id, user_id, problem_slug, attempt, answer, seed, request_hash)
  VALUES ('00000000-0000-4000-8000-000000000000', $1, 'pick', 1, $2, '${HEX64}', '${HEX64}') RETURNING id`;

/** The same row as a pgbench script (pgbench has no parameters from outside: the values are literal). */
export const PGBENCH_SCRIPT = `INSERT INTO bench_submission (assignment_id, user_id, problem_slug, attempt, answer, seed, request_hash)
  VALUES ('00000000-0000-4000-8000-000000000000', gen_random_uuid()::text, 'pick', 1, '{"selected": ["red"]}', '${HEX64}', '${HEX64}');\n`;
