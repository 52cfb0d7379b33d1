-- Pre-aggregated rollups for the consistency metrics and the version
-- comparison, filled by materialized views on every insert into calls.
--
-- Counting each call once: a materialized view fires per inserted block, so
-- the rollups rely on insert deduplication. A retried insert carries the same
-- insert_deduplication_token; calls drops the duplicate block and ClickHouse
-- then does not run the views for it. The rollup tables keep their own
-- deduplication window so that, with
-- deduplicate_blocks_in_dependent_materialized_views = 1 on the insert, a
-- retry after a failure between the calls part and a view part fills only
-- what is missing.

-- The grouping components behind a fingerprint (JSON object of the engine's
-- components), kept on failure rows so a person can see why two failures
-- share a fingerprint.
ALTER TABLE {db}calls {on_cluster}
    ADD COLUMN IF NOT EXISTS components String DEFAULT '' COMMENT 'grouping components of the fingerprint, JSON';

-- Exemplar and detail lookups filter calls by fingerprint, which is not in
-- the sort key.
ALTER TABLE {db}calls {on_cluster}
    ADD INDEX IF NOT EXISTS calls_fingerprint_idx fingerprint TYPE bloom_filter(0.01) GRANULARITY 4;

-- One row per project, model version, call site, hour, outcome and
-- fingerprint (0 for successful calls). calls is the weighted call count,
-- calls_sq the sum of squared weights (for the variance of a weighted rate),
-- occurrences the number of stored rows.
CREATE TABLE IF NOT EXISTS {db}calls_hourly {on_cluster}
(
    project       LowCardinality(String),
    model_version LowCardinality(String),
    call_site     LowCardinality(String),
    hour          DateTime('UTC'),
    is_failure    UInt8,
    fingerprint   UInt64,
    calls         SimpleAggregateFunction(sum, Float64),
    calls_sq      SimpleAggregateFunction(sum, Float64),
    occurrences   SimpleAggregateFunction(sum, UInt64)
)
ENGINE = {engine:AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (project, model_version, call_site, hour, is_failure, fingerprint)
TTL hour + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}calls_hourly_mv {on_cluster}
TO {db}calls_hourly AS
SELECT
    project,
    model_version,
    call_site,
    toStartOfHour(time) AS hour,
    is_failure,
    if(is_failure = 1, fingerprint, toUInt64(0)) AS fingerprint,
    sum(sample_weight) AS calls,
    sum(sample_weight * sample_weight) AS calls_sq,
    toUInt64(count()) AS occurrences
FROM {db}calls
GROUP BY project, model_version, call_site, hour, is_failure, fingerprint;

-- Outcomes per input: for each project, model version, call site and
-- input hash, how often it was called and the smallest and largest outcome
-- (0 = success, else the fingerprint). An input's outcomes agree exactly
-- when min = max, and min / max / sum merge, so repeatability is one
-- GROUP BY over this table. There is no time in the key on purpose: the
-- table grows with distinct inputs, not with calls, and repeatability is
-- measured over everything a version answered (an input repeated a day
-- apart is still a repeat).
CREATE TABLE IF NOT EXISTS {db}input_outcomes {on_cluster}
(
    project       LowCardinality(String),
    model_version LowCardinality(String),
    call_site     LowCardinality(String),
    input_hash    UInt64,
    occurrences   SimpleAggregateFunction(sum, UInt64),
    calls         SimpleAggregateFunction(sum, Float64),
    min_outcome   SimpleAggregateFunction(min, UInt64),
    max_outcome   SimpleAggregateFunction(max, UInt64),
    last_seen     SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = {engine:AggregatingMergeTree}
ORDER BY (project, model_version, call_site, input_hash)
TTL last_seen + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}input_outcomes_mv {on_cluster}
TO {db}input_outcomes AS
SELECT
    project,
    model_version,
    call_site,
    input_hash,
    toUInt64(count()) AS occurrences,
    sum(sample_weight) AS calls,
    min(if(is_failure = 1, fingerprint, toUInt64(0))) AS min_outcome,
    max(if(is_failure = 1, fingerprint, toUInt64(0))) AS max_outcome,
    max(toDateTime(time, 'UTC')) AS last_seen
FROM {db}calls
WHERE input_hash != 0
GROUP BY project, model_version, call_site, input_hash;
