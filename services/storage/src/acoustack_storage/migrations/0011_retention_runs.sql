-- What retention did at each file-management run, so the heartbeat, `acoustack status` and the
-- dashboard can tell the user what is being deleted and why. Kept for a week (pruned as runs are
-- recorded); a run every two minutes is about 5,000 small rows.
CREATE TABLE retention_runs (
    id                   bigserial PRIMARY KEY,
    ran_at               timestamptz NOT NULL DEFAULT now(),
    destination          text NOT NULL,
    max_age_days         double precision NOT NULL,
    keep_free_mb         integer NOT NULL,
    keep_best_per_species integer NOT NULL,
    deleted_for_age      integer NOT NULL,
    deleted_for_space    integer NOT NULL,
    kept_as_best         integer NOT NULL,
    -- The free space left on the destination's disk (null: not measured, the disk is not full).
    free_mb              double precision,
    short_of_free_mb     double precision NOT NULL,
    -- The highest best-detection score among the recordings deleted for space (null: none had a
    -- detection, or none was deleted): "deleted up to score 0.31" says what was given up.
    highest_deleted_score double precision
);
CREATE INDEX retention_runs_ran_at ON retention_runs (ran_at);
