-- Outcomes per input and hour, for repeatability over a window.
--
-- input_outcomes (0002) has no time, so repeatability read from it covered
-- every call a version ever answered, whatever window was asked for: a
-- version with 2 calls in the window showed the repeatability of its whole
-- history. This table keeps the same figures per hour, so a window reads
-- its own hours, as every other metric reads calls_hourly. An input counts
-- as repeated when its occurrences over the window's hours total 2 or more,
-- and its outcomes agree when min = max over those hours (min, max and sum
-- merge across hours as they do across parts and shards).
--
-- input_hash comes before hour in the key: repeatability groups by input
-- and reads a hash range of inputs when there are many (see analysis/_sql.py),
-- and both use the key; a window is pruned by the monthly partitions.
--
-- The materialized view's creation fills the table from the calls already
-- stored (store/_migrations.py ``_backfill``: calls FINAL, inserted before the
-- view existed), so an upgraded store answers windowed repeatability at once.
-- input_outcomes is dropped: nothing reads it any more, and a second view
-- grouping every insert by input would only add to the cost of ingest. A
-- query written against it reads this table, grouped by input.
CREATE TABLE IF NOT EXISTS {db}input_outcomes_hourly {on_cluster}
(
    project       LowCardinality(String),
    model_version LowCardinality(String),
    call_site     LowCardinality(String),
    input_hash    UInt64,
    hour          DateTime('UTC'),
    occurrences   SimpleAggregateFunction(sum, UInt64),
    calls         SimpleAggregateFunction(sum, Float64),
    min_outcome   SimpleAggregateFunction(min, UInt64),
    max_outcome   SimpleAggregateFunction(max, UInt64)
)
ENGINE = {engine:AggregatingMergeTree}
PARTITION BY toYYYYMM(hour)
ORDER BY (project, model_version, call_site, input_hash, hour)
TTL hour + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}input_outcomes_hourly_mv {on_cluster}
TO {db}input_outcomes_hourly AS
SELECT
    project,
    model_version,
    call_site,
    input_hash,
    toStartOfHour(time) AS hour,
    toUInt64(count()) AS occurrences,
    sum(sample_weight) AS calls,
    min(if(is_failure = 1, fingerprint, toUInt64(0))) AS min_outcome,
    max(if(is_failure = 1, fingerprint, toUInt64(0))) AS max_outcome
FROM {db}calls
WHERE input_hash != 0
GROUP BY project, model_version, call_site, input_hash, hour;

DROP VIEW IF EXISTS {db}input_outcomes_mv {on_cluster};

DROP TABLE IF EXISTS {db}input_outcomes {on_cluster};
