-- Convenience views for incident review in plain SQL. They read the tables
-- with the right aggregate functions (FINAL on calls, -Merge / sum on the
-- rollups), so an ad-hoc query never double-counts. Fingerprints appear as
-- 16 lowercase hex digits (fingerprint_hex), as everywhere else.

-- The fingerprint catalogue merged: one row per project, fingerprint and
-- model version.
CREATE VIEW IF NOT EXISTS {db}fingerprint_catalog_v {on_cluster} AS
SELECT
    project,
    fingerprint,
    leftPad(lower(hex(fingerprint)), 16, '0') AS fingerprint_hex,
    model_version,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(failures) AS failures,
    any(call_site) AS call_site,
    any(category) AS category,
    any(error_type) AS error_type,
    any(error_code) AS error_code,
    any(template) AS template,
    any(example_message) AS example_message,
    groupUniqArrayMerge(10)(exemplar_trace_ids) AS exemplar_trace_ids
FROM {db}fingerprint_catalog
GROUP BY project, fingerprint, model_version;

-- One row per project and fingerprint, over every model version.
CREATE VIEW IF NOT EXISTS {db}fingerprints_v {on_cluster} AS
SELECT
    project,
    fingerprint,
    leftPad(lower(hex(fingerprint)), 16, '0') AS fingerprint_hex,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(failures) AS failures,
    arraySort(groupUniqArray(model_version)) AS model_versions,
    any(call_site) AS call_site,
    any(category) AS category,
    any(error_type) AS error_type,
    any(error_code) AS error_code,
    any(template) AS template,
    any(example_message) AS example_message
FROM {db}fingerprint_catalog
GROUP BY project, fingerprint;

-- Every failed call (each once), with its fingerprint's catalogue entry.
CREATE VIEW IF NOT EXISTS {db}failures_v {on_cluster} AS
SELECT
    c.project AS project,
    c.time AS time,
    c.trace_id AS trace_id,
    c.span_id AS span_id,
    c.service AS service,
    c.environment AS environment,
    c.release AS release,
    c.provider AS provider,
    c.model_version AS model_version,
    c.call_site AS call_site,
    c.category AS category,
    c.error_type AS error_type,
    c.error_code AS error_code,
    c.http_status AS http_status,
    c.message AS message,
    c.template AS template,
    c.fingerprint AS fingerprint,
    leftPad(lower(hex(c.fingerprint)), 16, '0') AS fingerprint_hex,
    c.coarse_fingerprint AS coarse_fingerprint,
    c.finish_reason AS finish_reason,
    c.latency_ms AS latency_ms,
    c.input_hash AS input_hash,
    f.first_seen AS fingerprint_first_seen,
    f.last_seen AS fingerprint_last_seen,
    f.failures AS fingerprint_failures,
    f.model_versions AS fingerprint_model_versions
FROM (SELECT * FROM {db}calls FINAL WHERE is_failure = 1) AS c
LEFT JOIN {db}fingerprints_v AS f
    ON c.project = f.project AND c.fingerprint = f.fingerprint;

-- Calls, failures and failure rate per project, model version, call site
-- and hour, from the hourly rollup (weighted by sample weight).
CREATE VIEW IF NOT EXISTS {db}version_hourly_v {on_cluster} AS
SELECT
    project,
    model_version,
    call_site,
    hour,
    sum(h.calls) AS calls,
    sumIf(h.calls, h.is_failure = 1) AS failures,
    if(calls > 0, failures / calls, 0) AS failure_rate,
    uniqExactIf(h.fingerprint, h.is_failure = 1) AS distinct_fingerprints
FROM {db}calls_hourly AS h
GROUP BY project, model_version, call_site, hour;

-- Failures per fingerprint, project, model version, call site and hour.
CREATE VIEW IF NOT EXISTS {db}fingerprint_hourly_v {on_cluster} AS
SELECT
    project,
    model_version,
    call_site,
    hour,
    fingerprint,
    leftPad(lower(hex(fingerprint)), 16, '0') AS fingerprint_hex,
    sum(calls) AS failures
FROM {db}calls_hourly
WHERE is_failure = 1
GROUP BY project, model_version, call_site, hour, fingerprint;
