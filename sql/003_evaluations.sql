-- 003_evaluations: backtests of an ensemble that are not search trials.
--
-- An analysis of an ensemble may backtest parameter sets the searchers never suggested:
-- the report's consensus (the per-parameter median of the seeds' best trials), and
-- later the best parameters on data the search never saw (a holdout range, the test
-- windows of a walk-forward). Recording them makes the analysis reproducible: a second
-- report reads the recorded outcome instead of trusting a new one, and a backtest that
-- would now give other bits is refused as a non-deterministic retry, like a trial.
--
-- Natural key: (ensemble_id, kind, label). `kind` says what sort of evaluation it is
-- ('consensus', ...), `label` which one of that kind ('median', 'seed 42', a window).
-- A rule that chooses params differently must use a new label, never rewrite a row.
-- Deterministic part, compared bit for bit on a retried write: params, params_exact,
-- basis, dataset_fingerprint, status, score, the metrics and message.

CREATE TABLE evaluations (
    ensemble_id         uuid NOT NULL REFERENCES ensembles (id),
    kind                text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    label               text NOT NULL CHECK (label <> ''),
    params              jsonb NOT NULL,
    params_exact        text NOT NULL,
    basis               jsonb NOT NULL DEFAULT '{}',
    dataset_fingerprint text NOT NULL REFERENCES datasets (fingerprint),
    status              trial_status NOT NULL,
    score               finite_double NOT NULL,
    sharpe              finite_double,
    sortino             finite_double,
    calmar              finite_double,
    total_return        finite_double,
    max_drawdown        finite_double,
    n_trades            integer CHECK (n_trades >= 0),
    win_rate            finite_double,
    profit_factor       finite_double,
    exposure            finite_double,
    mean_bars_held      finite_double,
    message             text,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ensemble_id, kind, label),
    CHECK ((status = 'invalid') = (message IS NOT NULL)),
    CHECK (status = 'invalid' OR n_trades IS NOT NULL),
    CHECK (status = 'ok' OR num_nonnulls(sharpe, sortino, calmar, total_return, max_drawdown,
                                         n_trades, win_rate, profit_factor, exposure,
                                         mean_bars_held) = 0)
);
COMMENT ON TABLE evaluations IS
    'Backtests of an ensemble that are not search trials (the report''s consensus; later '
    'holdout and walk-forward tests), one per (ensemble, kind, label). Same outcome '
    'columns and conventions as trials.';
COMMENT ON COLUMN evaluations.kind IS 'What sort of evaluation: consensus, ...';
COMMENT ON COLUMN evaluations.label IS
    'Which evaluation of its kind, e.g. the rule that chose the params (median).';
COMMENT ON COLUMN evaluations.params_exact IS
    'The parameters as canonical JSON with floats as exact hex (float.hex), as in trials.';
COMMENT ON COLUMN evaluations.basis IS
    'What the params were derived from (e.g. the seeds and trials whose bests gave a '
    'consensus), deterministic like the outcome.';
COMMENT ON COLUMN evaluations.dataset_fingerprint IS
    'The candles the backtest ran on (the ensemble''s own, or another range''s).';
