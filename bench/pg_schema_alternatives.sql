-- The job row's life (insert, claim, complete) on three PostgreSQL schemas, to weigh how much a
-- schema built for HOT updates would save against today's. Run by pg_schema_alternatives.sh.
-- Each procedure does the jobs-table part of what the nodes' writers do for `cycles` × 1000
-- noop jobs: a bulk insert of 1000, then ten claims of 100 (`FOR UPDATE SKIP LOCKED`) each
-- followed by its completion, a commit after every step. Events, NOTIFY and the nodes are left
-- out: they cost the same on every schema.
--
--   a  today's `jobs`, made by the store's own migrations: the claim order, the active set and
--      listing by state are partial or plain indexes on `state`, so every state change writes
--      a new version of the row with an entry in each index.
--   b  `jobs` without an index on any column a claim or completion changes (fillfactor :ff so
--      the new versions fit on the row's page: HOT updates, no index entries), and a
--      `job_queue` table holding the claim order, a row per queued job deleted by its claim.
--      No index finds the active set or lists jobs by state: an optimistic bound.
--   c  as b, but `job_live` holds queued and active jobs (state, lease owner), so the active
--      set keeps its index: a claim updates its row there, a completion deletes it.
-- Schema a is made by the runner with `conclave migrate`: it is exactly the store's.
DROP SCHEMA IF EXISTS b CASCADE;
DROP SCHEMA IF EXISTS c CASCADE;
CREATE SCHEMA b;
CREATE SCHEMA c;

CREATE TABLE b.jobs (LIKE a.jobs INCLUDING DEFAULTS INCLUDING IDENTITY) WITH (fillfactor = :ff);
ALTER TABLE b.jobs ADD PRIMARY KEY (seq), ADD UNIQUE (id);
CREATE UNIQUE INDEX ON b.jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE b.job_queue (
    seq BIGINT NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    priority INTEGER NOT NULL,
    run_at BIGINT NOT NULL
);
CREATE INDEX ON b.job_queue(type, priority DESC, run_at, seq);

CREATE TABLE c.jobs (LIKE b.jobs INCLUDING DEFAULTS INCLUDING IDENTITY) WITH (fillfactor = :ff);
ALTER TABLE c.jobs ADD PRIMARY KEY (seq), ADD UNIQUE (id);
CREATE UNIQUE INDEX ON c.jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE c.job_live (
    seq BIGINT PRIMARY KEY,
    type TEXT COLLATE "C" NOT NULL,
    queue TEXT COLLATE "C" NOT NULL,
    priority INTEGER NOT NULL,
    run_at BIGINT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    lease_owner TEXT COLLATE "C",
    lease_expires_at BIGINT
);
CREATE INDEX ON c.job_live(type, priority DESC, run_at, seq) WHERE state = 'queued';
CREATE INDEX ON c.job_live(type, queue, lease_owner) WHERE state = 'active';

-- The bulk insert's 1000 rows, as the store writes them.
CREATE VIEW public.new_jobs AS
SELECT gen_random_uuid()::text AS id, 'noop' AS type, 'default' AS queue, 0 AS priority,
       '{}' AS payload, 3 AS max_attempts, 1::bigint AS run_at, 60 AS timeout_s,
       1000::bigint AS backoff_base_ms, 60000::bigint AS backoff_cap_ms, '[]' AS topics,
       1::bigint AS created_at
FROM generate_series(1, 1000);

CREATE PROCEDURE a.run(cycles int) LANGUAGE plpgsql AS $$
DECLARE claimed bigint[];
BEGIN
  FOR i IN 1..cycles LOOP
    INSERT INTO a.jobs(id, type, queue, state, priority, payload, max_attempts, run_at, timeout_s,
                       backoff_base_ms, backoff_cap_ms, topics, created_at)
    SELECT id, type, queue, 'queued', priority, payload, max_attempts, run_at, timeout_s,
           backoff_base_ms, backoff_cap_ms, topics, created_at FROM public.new_jobs;
    COMMIT;
    FOR k IN 1..10 LOOP
      WITH c AS (SELECT seq FROM a.jobs WHERE state = 'queued' AND type = 'noop'
                 ORDER BY priority DESC, run_at, seq LIMIT 100 FOR UPDATE SKIP LOCKED),
           u AS (UPDATE a.jobs SET state = 'active', attempts = jobs.attempts + 1,
                        lease_owner = 'node-1', lease_token = 'token', lease_expires_at = 2,
                        started_at = 2
                 FROM c WHERE jobs.seq = c.seq RETURNING jobs.seq)
      SELECT array_agg(seq) INTO claimed FROM u;
      COMMIT;
      UPDATE a.jobs SET state = 'succeeded', result = 'null', finished_at = 3, lease_owner = NULL,
                        lease_expires_at = NULL, events_offset = 3
      WHERE seq = ANY(claimed);
      COMMIT;
    END LOOP;
  END LOOP;
END $$;

CREATE PROCEDURE b.run(cycles int) LANGUAGE plpgsql AS $$
DECLARE claimed bigint[];
BEGIN
  FOR i IN 1..cycles LOOP
    WITH ins AS (
      INSERT INTO b.jobs(id, type, queue, state, priority, payload, max_attempts, run_at,
                         timeout_s, backoff_base_ms, backoff_cap_ms, topics, created_at)
      SELECT id, type, queue, 'queued', priority, payload, max_attempts, run_at, timeout_s,
             backoff_base_ms, backoff_cap_ms, topics, created_at FROM public.new_jobs
      RETURNING seq, type, priority, run_at)
    INSERT INTO b.job_queue SELECT seq, type, priority, run_at FROM ins;
    COMMIT;
    FOR k IN 1..10 LOOP
      WITH q AS (DELETE FROM b.job_queue WHERE ctid = ANY(ARRAY(
                   SELECT ctid FROM b.job_queue WHERE type = 'noop'
                   ORDER BY priority DESC, run_at, seq LIMIT 100 FOR UPDATE SKIP LOCKED))
                 RETURNING seq),
           u AS (UPDATE b.jobs SET state = 'active', attempts = jobs.attempts + 1,
                        lease_owner = 'node-1', lease_token = 'token', lease_expires_at = 2,
                        started_at = 2
                 FROM q WHERE jobs.seq = q.seq RETURNING jobs.seq)
      SELECT array_agg(seq) INTO claimed FROM u;
      COMMIT;
      UPDATE b.jobs SET state = 'succeeded', result = 'null', finished_at = 3, lease_owner = NULL,
                        lease_expires_at = NULL, events_offset = 3
      WHERE seq = ANY(claimed);
      COMMIT;
    END LOOP;
  END LOOP;
END $$;

CREATE PROCEDURE c.run(cycles int) LANGUAGE plpgsql AS $$
DECLARE claimed bigint[];
BEGIN
  FOR i IN 1..cycles LOOP
    WITH ins AS (
      INSERT INTO c.jobs(id, type, queue, state, priority, payload, max_attempts, run_at,
                         timeout_s, backoff_base_ms, backoff_cap_ms, topics, created_at)
      SELECT id, type, queue, 'queued', priority, payload, max_attempts, run_at, timeout_s,
             backoff_base_ms, backoff_cap_ms, topics, created_at FROM public.new_jobs
      RETURNING seq, type, queue, priority, run_at)
    INSERT INTO c.job_live(seq, type, queue, priority, run_at, state)
    SELECT seq, type, queue, priority, run_at, 'queued' FROM ins;
    COMMIT;
    FOR k IN 1..10 LOOP
      WITH q AS (SELECT seq FROM c.job_live WHERE state = 'queued' AND type = 'noop'
                 ORDER BY priority DESC, run_at, seq LIMIT 100 FOR UPDATE SKIP LOCKED),
           l AS (UPDATE c.job_live SET state = 'active', lease_owner = 'node-1',
                        lease_expires_at = 2
                 FROM q WHERE job_live.seq = q.seq RETURNING job_live.seq),
           u AS (UPDATE c.jobs SET state = 'active', attempts = jobs.attempts + 1,
                        lease_owner = 'node-1', lease_token = 'token', lease_expires_at = 2,
                        started_at = 2
                 FROM l WHERE jobs.seq = l.seq RETURNING jobs.seq)
      SELECT array_agg(seq) INTO claimed FROM u;
      COMMIT;
      WITH d AS (DELETE FROM c.job_live WHERE seq = ANY(claimed))
      UPDATE c.jobs SET state = 'succeeded', result = 'null', finished_at = 3, lease_owner = NULL,
                        lease_expires_at = NULL, events_offset = 3
      WHERE seq = ANY(claimed);
      COMMIT;
    END LOOP;
  END LOOP;
END $$;
