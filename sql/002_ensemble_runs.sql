-- 002_ensemble_runs: every execution of an ensemble, its first run and each resume.
--
-- An ensemble's records must not depend on how, where or how often it ran; this table
-- says how it did run, for diagnosis and for resume: the execution-only settings (never
-- part of spec_id), the numeric platform of the driver host (which the Bayesian
-- searcher's bits depend on), the data manifest as that run loaded it, and how the run
-- ended. A run's id is made by the driver before its first write, so a retried insert
-- is an idempotent upsert.

CREATE TABLE ensemble_runs (
    id                      uuid PRIMARY KEY,
    ensemble_id             uuid NOT NULL REFERENCES ensembles (id),
    kind                    text NOT NULL CHECK (kind IN ('run', 'resume')),
    execution               jsonb NOT NULL,
    platform                jsonb NOT NULL,
    platform_change_allowed boolean NOT NULL DEFAULT false,
    manifest                jsonb NOT NULL,
    host                    jsonb NOT NULL,
    started_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz,
    outcome                 text CHECK (outcome IN ('complete', 'interrupted', 'failed')),
    CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
COMMENT ON TABLE ensemble_runs IS
    'Each execution of an ensemble (run or resume): settings, platform, data, outcome. '
    'A run without an outcome was killed (its driver never finished it).';
COMMENT ON COLUMN ensemble_runs.execution IS
    'Execution-only settings (job file, base directory for relative paths, concurrency, '
    'resources, retry budget, Tune storage path). Never secrets, never part of spec_id.';
COMMENT ON COLUMN ensemble_runs.platform IS
    'The numeric platform of the driver host that computed the suggestions.';
COMMENT ON COLUMN ensemble_runs.platform_change_allowed IS
    'True when a resume on a different numeric platform was explicitly allowed.';
COMMENT ON COLUMN ensemble_runs.manifest IS
    'The dataset manifest as this run loaded it (its fingerprint is the ensemble''s).';
CREATE INDEX ensemble_runs_ensemble_idx ON ensemble_runs (ensemble_id, started_at);
