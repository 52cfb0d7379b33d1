-- One row per model call. ReplacingMergeTree keyed by the call's identity
-- (project, model version, call site, time, trace id, span id are all fixed
-- for a given span) so a replayed batch collapses into the original rows;
-- readers that need exact counts read with FINAL or through the rollups,
-- which are protected by insert deduplication tokens.
CREATE TABLE IF NOT EXISTS {db}calls {on_cluster}
(
    project            LowCardinality(String) COMMENT 'tenant; stamped from the caller''s API key',
    time               DateTime64(6, 'UTC')   COMMENT 'span start',
    trace_id           String                 COMMENT '32 hex digits',
    span_id            String                 COMMENT '16 hex digits',
    parent_span_id     String,
    service            LowCardinality(String),
    environment        LowCardinality(String),
    release            LowCardinality(String),
    operation          LowCardinality(String) COMMENT 'gen_ai.operation.name: chat, text_completion, embeddings, …',
    span_name          String,
    provider           LowCardinality(String),
    request_model      LowCardinality(String),
    response_model     LowCardinality(String),
    model_version      LowCardinality(String) COMMENT 'explicit version tag, else response model, else request model',
    call_site          LowCardinality(String) COMMENT 'decorated function or instrumented endpoint',
    status             LowCardinality(String) COMMENT 'ok | error',
    is_failure         UInt8,
    category           LowCardinality(String) COMMENT 'failure category, empty for successful calls',
    error_type         LowCardinality(String),
    error_code         LowCardinality(String) COMMENT 'provider error code, e.g. rate_limit_exceeded',
    http_status        UInt16,
    message            String                 COMMENT 'raw failure message, bounded and scrubbed',
    template           String                 COMMENT 'normalised message template',
    fingerprint        UInt64                 COMMENT 'fine failure fingerprint, 0 for successful calls',
    coarse_fingerprint UInt64,
    strategy           LowCardinality(String) COMMENT 'grouping strategy version',
    latency_ms         Float64,
    input_tokens       UInt32,
    output_tokens      UInt32,
    finish_reason      LowCardinality(String),
    input_hash         UInt64                 COMMENT 'hash of the call''s arguments, for repeatability',
    sample_weight      Float64 DEFAULT 1      COMMENT '1/r when successes are sampled at rate r',
    input_text         String                 COMMENT 'bounded, redacted content when capture is enabled',
    output_text        String,
    attributes         Map(LowCardinality(String), String),
    inserted_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {engine:ReplacingMergeTree(inserted_at)}
PARTITION BY toYYYYMM(time)
ORDER BY (project, model_version, call_site, time, trace_id, span_id)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- The fingerprint catalogue: one row per (project, fingerprint, model
-- version) after merges; read with the -Merge / max / min functions or the
-- fingerprint_catalog_v view.
CREATE TABLE IF NOT EXISTS {db}fingerprint_catalog {on_cluster}
(
    project            LowCardinality(String),
    fingerprint        UInt64,
    model_version      LowCardinality(String),
    first_seen         SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen          SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    failures           SimpleAggregateFunction(sum, Float64),
    occurrences        SimpleAggregateFunction(sum, UInt64),
    coarse_fingerprint SimpleAggregateFunction(any, UInt64),
    call_site          SimpleAggregateFunction(any, String),
    category           SimpleAggregateFunction(any, String),
    error_type         SimpleAggregateFunction(any, String),
    error_code         SimpleAggregateFunction(any, String),
    template           SimpleAggregateFunction(any, String),
    example_message    SimpleAggregateFunction(any, String),
    exemplar_trace_ids AggregateFunction(groupUniqArray(10), String)
)
ENGINE = {engine:AggregatingMergeTree}
ORDER BY (project, fingerprint, model_version)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}fingerprint_catalog_mv {on_cluster}
TO {db}fingerprint_catalog AS
SELECT
    project,
    fingerprint,
    model_version,
    min(time) AS first_seen,
    max(time) AS last_seen,
    sum(sample_weight) AS failures,
    toUInt64(count()) AS occurrences,
    any(coarse_fingerprint) AS coarse_fingerprint,
    any(call_site) AS call_site,
    any(category) AS category,
    any(error_type) AS error_type,
    any(error_code) AS error_code,
    any(template) AS template,
    any(message) AS example_message,
    groupUniqArrayState(10)(trace_id) AS exemplar_trace_ids
FROM {db}calls
WHERE is_failure = 1
GROUP BY project, fingerprint, model_version;
