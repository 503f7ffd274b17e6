-- 004_out_of_sample: the records of an ensemble's out-of-sample tests and robustness.
--
-- A job may name a holdout range and walk-forward windows (docs/jobs.md). The holdout's
-- candles are a dataset of their own, linked to the ensemble here (ensemble_datasets),
-- so that a later report backtests on exactly the candles the run checked. Each
-- walk-forward window of each seed is a search of its own, on the window's training
-- candles, run in the ensemble's experiment: its windows and trials have tables of their
-- own, so that the ensemble's trials (what the report, export and verify compare) keep
-- meaning "the searches on the job's data". Backtests of single parameter sets (a seed's
-- best on the holdout, a window's best on its test candles) are `evaluations` (003).
-- What the report derives from many backtests at once (the stitched walk-forward, the
-- deflated Sharpe ratio, PBO, Monte Carlo, sensitivity) is a `robustness` row.
--
-- The records layer's rules hold: natural keys, idempotent upserts, a retried write with
-- another deterministic payload is an error, floats bit for bit.

CREATE TABLE ensemble_datasets (
    ensemble_id         uuid NOT NULL REFERENCES ensembles (id),
    role                text NOT NULL CHECK (role IN ('holdout')),
    dataset_fingerprint text NOT NULL REFERENCES datasets (fingerprint),
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ensemble_id, role)
);
COMMENT ON TABLE ensemble_datasets IS
    'Datasets of an ensemble besides the one its searches ran on: the holdout range''s '
    'candles, loaded and checked by the run, never given to a search.';


CREATE TABLE walk_forward_windows (
    ensemble_id  uuid NOT NULL,
    seed         integer NOT NULL,
    window_index integer NOT NULL CHECK (window_index >= 0),
    search_seed  bigint NOT NULL,
    train_start  integer NOT NULL,
    train_stop   integer NOT NULL,
    test_start   integer NOT NULL,
    test_stop    integer NOT NULL,
    train_from   bigint NOT NULL,
    test_from    bigint NOT NULL,
    test_until   bigint NOT NULL,
    budget       integer NOT NULL CHECK (budget >= 1),
    status       job_status NOT NULL DEFAULT 'pending',
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (ensemble_id, seed, window_index),
    FOREIGN KEY (ensemble_id, seed) REFERENCES training_jobs (ensemble_id, seed),
    CHECK (0 <= train_start AND train_start < train_stop AND train_stop <= test_start
           AND test_start < test_stop),
    CHECK (train_from < test_from AND test_from < test_until)
);
COMMENT ON TABLE walk_forward_windows IS
    'One walk-forward window of one seed: a search of its own on rows [train_start, '
    'train_stop) of the ensemble''s candles, its best later tested on [test_start, '
    'test_stop). Deterministic part: everything but status and the times.';
COMMENT ON COLUMN walk_forward_windows.search_seed IS
    'The window''s searcher seed: seed + (window_index + 1) * 2^32.';
COMMENT ON COLUMN walk_forward_windows.train_from IS
    'Open time (ms UTC) of the first training candle; test_from of the first test candle, '
    'test_until the open time after the last one (half-open ranges).';


CREATE TABLE walk_forward_trials (
    ensemble_id     uuid NOT NULL,
    seed            integer NOT NULL,
    window_index    integer NOT NULL,
    trial_index     integer NOT NULL CHECK (trial_index >= 0),
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
    PRIMARY KEY (ensemble_id, seed, window_index, trial_index),
    FOREIGN KEY (ensemble_id, seed, window_index)
        REFERENCES walk_forward_windows (ensemble_id, seed, window_index),
    CHECK ((status = 'invalid') = (message IS NOT NULL)),
    CHECK (status = 'invalid' OR n_trades IS NOT NULL),
    CHECK (status = 'ok' OR num_nonnulls(sharpe, sortino, calmar, total_return, max_drawdown,
                                         n_trades, win_rate, profit_factor, exposure,
                                         mean_bars_held) = 0)
);
COMMENT ON TABLE walk_forward_trials IS
    'Every finished trial of a walk-forward window''s search, with the columns and '
    'conventions of trials (the spec_id is the ensemble''s).';


CREATE TABLE robustness (
    ensemble_id  uuid NOT NULL REFERENCES ensembles (id),
    analysis     text NOT NULL CHECK (analysis ~ '^[a-z][a-z0-9_]*$'),
    label        text NOT NULL CHECK (label <> ''),
    settings     jsonb NOT NULL DEFAULT '{}',
    result       jsonb NOT NULL,
    result_exact text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ensemble_id, analysis, label)
);
COMMENT ON TABLE robustness IS
    'A figure the report derives from many backtests of an ensemble (walk_forward, '
    'deflated_sharpe, pbo, monte_carlo, sensitivity), computed once and recorded.';
COMMENT ON COLUMN robustness.settings IS
    'The settings it was computed with (blocks, paths, shares...): deterministic.';
COMMENT ON COLUMN robustness.result_exact IS
    'The result as canonical JSON text (keys sorted, floats in their shortest round-trip '
    'form, which names every bit); result holds the same as jsonb for queries.';
