-- 001_init: the records of reprotune (DESIGN.md, contracts 1, 2, 5).
--
-- Natural keys decide identity: datasets (fingerprint), ensembles (id, a UUID the
-- driver makes before its first write), training_jobs (ensemble_id, seed), trials
-- (training_job_id, trial_index). Serial ids exist for joins only and are never part
-- of what two runs compare. Floats are stored as written, bit for bit; NaN and
-- infinities never are (an undefined metric is NULL).

CREATE TYPE ensemble_status AS ENUM ('running', 'interrupted', 'complete');
COMMENT ON TYPE ensemble_status IS
    'Mirrored by cluster.records_types.EnsembleStatus. The stored value is what the driver '
    'last wrote; ensemble_overview.status derives the live one from the advisory lock.';

CREATE TYPE job_status AS ENUM ('pending', 'running', 'interrupted', 'complete');
COMMENT ON TYPE job_status IS 'Mirrored by cluster.records_types.JobStatus.';

CREATE TYPE trial_status AS ENUM ('ok', 'invalid');
COMMENT ON TYPE trial_status IS
    'Mirrored by cluster.records_types.TrialStatus: the kernel''s outcome (contract 3). '
    'Infrastructure failures are never recorded as trials.';

CREATE DOMAIN finite_double AS double precision
    CHECK (VALUE NOT IN ('NaN'::double precision, 'Infinity', '-Infinity'));
COMMENT ON DOMAIN finite_double IS
    'A float8 that is never NaN or infinite (STRATEGY.md C18: undefined is NULL).';


CREATE TABLE datasets (
    fingerprint text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    manifest    jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE datasets IS
    'One row per candle table, identified by the sha256 of its content (contract 4).';
COMMENT ON COLUMN datasets.manifest IS
    'What the table holds and how it was made (market, timeframe, range, rows, gap fills).';


CREATE TABLE ensembles (
    id                  uuid PRIMARY KEY,
    name                text,
    spec_id             text NOT NULL CHECK (spec_id ~ '^[0-9a-f]{64}$'),
    spec                jsonb NOT NULL,
    seeds               integer[] NOT NULL CHECK (cardinality(seeds) >= 1),
    dataset_fingerprint text NOT NULL REFERENCES datasets (fingerprint),
    records_version     integer NOT NULL,
    library_versions    jsonb NOT NULL,
    host                jsonb NOT NULL,
    status              ensemble_status NOT NULL DEFAULT 'running',
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    UNIQUE (id, spec_id)
);
COMMENT ON TABLE ensembles IS
    'One execution of a resolved job spec over a list of seeds (contract 1). '
    'A running ensemble holds the advisory lock ensemble_lock_key(id).';
COMMENT ON COLUMN ensembles.spec_id IS
    'sha256 of the canonical JSON of the resolved spec, RECORDS_VERSION included.';
COMMENT ON COLUMN ensembles.library_versions IS
    'Versions of the libraries that decide result bits (cluster.versions.BIT_DECIDING).';
COMMENT ON COLUMN ensembles.host IS 'CPU, BLAS build and Python of the driver host.';
CREATE INDEX ensembles_spec_id_idx ON ensembles (spec_id);


CREATE TABLE training_jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ensemble_id      uuid NOT NULL,
    seed             integer NOT NULL DEFAULT 42,
    spec_id          text NOT NULL,
    searcher         text NOT NULL,
    searcher_options jsonb NOT NULL DEFAULT '{}',
    budget           integer NOT NULL CHECK (budget >= 1),
    status           job_status NOT NULL DEFAULT 'pending',
    best_trial_index integer,
    best_params      jsonb,
    best_score       finite_double,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    UNIQUE (ensemble_id, seed),
    UNIQUE (id, seed, spec_id),
    FOREIGN KEY (ensemble_id, spec_id) REFERENCES ensembles (id, spec_id),
    CHECK (num_nulls(best_trial_index, best_params, best_score) IN (0, 3))
);
COMMENT ON TABLE training_jobs IS
    'One seeded search of an ensemble: the job (spec_id, seed). '
    'The seed column kept the old system''s DEFAULT 42; the recorder always sets it.';
COMMENT ON COLUMN training_jobs.budget IS 'Number of trials the searcher runs.';
COMMENT ON COLUMN training_jobs.best_trial_index IS
    'Highest score, ties to the lowest trial_index; set by the recorder from trials.';
CREATE INDEX training_jobs_seed_idx ON training_jobs (seed);


CREATE TABLE trials (
    training_job_id bigint NOT NULL,
    trial_index     integer NOT NULL CHECK (trial_index >= 0),
    seed            integer NOT NULL,
    spec_id         text NOT NULL,
    params          jsonb NOT NULL,
    params_exact    text NOT NULL,
    status          trial_status NOT NULL,
    score           finite_double NOT NULL,
    sharpe          finite_double,
    sortino         finite_double,
    calmar          finite_double,
    total_return    finite_double,
    max_drawdown    finite_double,
    n_trades        integer CHECK (n_trades >= 0),
    win_rate        finite_double,
    profit_factor   finite_double,
    exposure        finite_double,
    mean_bars_held  finite_double,
    message         text,
    node            text,
    attempts        integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    started_at      timestamptz,
    finished_at     timestamptz,
    duration_s      double precision CHECK (duration_s >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (training_job_id, trial_index),
    FOREIGN KEY (training_job_id, seed, spec_id) REFERENCES training_jobs (id, seed, spec_id),
    CHECK ((status = 'invalid') = (message IS NOT NULL)),
    CHECK (status = 'invalid' OR n_trades IS NOT NULL),
    CHECK (status = 'ok' OR num_nonnulls(sharpe, sortino, calmar, total_return, max_drawdown,
                                         n_trades, win_rate, profit_factor, exposure,
                                         mean_bars_held) = 0)
);
COMMENT ON TABLE trials IS
    'Every finished trial of every job. Deterministic part (contract 2): spec_id, seed, '
    'trial_index, params, status, score, the metrics, message. node, attempts and the '
    'times may differ between runs.';
COMMENT ON COLUMN trials.params IS 'The strategy parameters, for queries (jsonb numbers).';
COMMENT ON COLUMN trials.params_exact IS
    'The same parameters as canonical JSON with floats as exact hex (float.hex): '
    'jsonb numbers cannot hold -0.0, so comparisons and the export use this column.';
COMMENT ON COLUMN trials.score IS
    'STRATEGY.md C17: Sharpe, or the job''s penalty when it trades too little or is invalid.';
COMMENT ON COLUMN trials.message IS 'Exception class and text of an invalid trial.';
COMMENT ON COLUMN trials.node IS 'Ray node that ran the final attempt.';
CREATE INDEX trials_spec_seed_idx ON trials (spec_id, seed, trial_index);


CREATE FUNCTION ensemble_lock_key(ensemble uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('x' || left(replace(ensemble::text, '-', ''), 16))::bit(64)::bigint;
COMMENT ON FUNCTION ensemble_lock_key(uuid) IS
    'The session advisory lock a running ensemble holds: the UUID''s first 64 bits.';

CREATE FUNCTION advisory_lock_held(key bigint) RETURNS boolean
    LANGUAGE sql STABLE STRICT
    RETURN EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = ((key >> 32) & 4294967295)::oid
          AND objid = (key & 4294967295)::oid);
COMMENT ON FUNCTION advisory_lock_held(bigint) IS
    'Whether any session holds pg_advisory_lock(key) in this database (no side effects).';


CREATE VIEW ensemble_overview AS
SELECT e.id,
       e.name,
       e.spec_id,
       e.seeds,
       CASE
           WHEN e.status = 'complete' THEN 'complete'::ensemble_status
           WHEN advisory_lock_held(ensemble_lock_key(e.id)) THEN 'running'::ensemble_status
           ELSE 'interrupted'::ensemble_status
       END AS status,
       e.status AS recorded_status,
       e.dataset_fingerprint,
       e.created_at,
       e.started_at,
       e.finished_at
FROM ensembles e;
COMMENT ON VIEW ensemble_overview IS
    'Ensembles with their live status: not complete and nobody holding the lock '
    'means interrupted (a SIGKILLed driver cannot leave a stale "running").';


CREATE VIEW training_job_overview AS
SELECT j.id,
       j.ensemble_id,
       j.seed,
       j.spec_id,
       j.searcher,
       j.budget,
       CASE
           WHEN j.status = 'complete' THEN j.status
           WHEN e.status = 'running' THEN j.status
           ELSE 'interrupted'::job_status
       END AS status,
       j.status AS recorded_status,
       counts.n_trials,
       counts.n_ok,
       counts.n_invalid,
       j.best_trial_index,
       j.best_score,
       j.best_params,
       j.started_at,
       j.finished_at
FROM training_jobs j
JOIN ensemble_overview e ON e.id = j.ensemble_id
CROSS JOIN LATERAL (
    SELECT count(*) AS n_trials,
           count(*) FILTER (WHERE t.status = 'ok') AS n_ok,
           count(*) FILTER (WHERE t.status = 'invalid') AS n_invalid
    FROM trials t WHERE t.training_job_id = j.id
) counts;
COMMENT ON VIEW training_job_overview IS
    'Training jobs with trial counts and a live status: a job that is not complete in '
    'an ensemble that is not running shows as interrupted.';
