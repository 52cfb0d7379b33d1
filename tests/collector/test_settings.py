"""Collector settings from the environment: malformed or nonsensical values are refused."""

from __future__ import annotations

import math

import pytest
from faultprint_collector.settings import Settings, SettingsError

BAD_VALUES = [
    ("FAULTPRINT_RETENTION_DAYS", "0", "between 1 and 36500"),
    ("FAULTPRINT_RETENTION_DAYS", "-1", "between 1 and 36500"),
    ("FAULTPRINT_RETENTION_DAYS", "36501", "between 1 and 36500"),
    ("FAULTPRINT_RETENTION_DAYS", "ninety", "must be an integer"),
    ("FAULTPRINT_MAX_BODY_BYTES", "abc", "must be an integer"),
    ("FAULTPRINT_MAX_BODY_BYTES", "0", "between 1 and"),
    ("FAULTPRINT_MAX_DECOMPRESSED_BYTES", "1.5", "must be an integer"),
    ("FAULTPRINT_MAX_DECOMPRESSED_BYTES", "-1", "between 1 and"),
    ("FAULTPRINT_SPOOL_MAX_BYTES", "-5", "between 1 and"),
    ("FAULTPRINT_DECODE_WORKERS", "abc", "must be an integer"),
    ("FAULTPRINT_DECODE_WORKERS", "-2", "between -1 and"),
    ("FAULTPRINT_DECODE_WORKERS", "100000", "between -1 and"),
    ("FAULTPRINT_MAX_INFLIGHT_REQUESTS", "0", "between 1 and"),
    ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "nan", "finite number"),
    ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "inf", "finite number"),
    ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "-1", "0 (unlimited) or more"),
    ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "fast", "must be a number"),
    ("FAULTPRINT_CLUSTER_WRITES", "bogus", "distributed or local"),
    ("FAULTPRINT_READ_CONNECTIONS", "0", "between 1 and 64"),
    ("FAULTPRINT_READ_CONNECTIONS", "many", "must be an integer"),
    ("FAULTPRINT_SQL_TIMEOUT_S", "0", "more than 0"),
    ("FAULTPRINT_SQL_TIMEOUT_S", "nan", "more than 0"),
    ("FAULTPRINT_SQL_TIMEOUT_S", "soon", "must be a number"),
    ("FAULTPRINT_SQL_MAX_MEMORY_BYTES", "100", "between 1048576 and"),
    ("FAULTPRINT_SCRUB", "maybe", "must be on or off"),
    ("FAULTPRINT_SCRUB", "of", "must be on or off"),
    ("FAULTPRINT_SCRUB", "disabled", "must be on or off"),
    ("FAULTPRINT_SCRUB_PATTERNS", "(", "invalid regular expression '('"),
    ("FAULTPRINT_SCRUB_PATTERNS", r"order-\d+;;[a-", "invalid regular expression '[a-'"),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES)
def test_a_bad_value_names_the_variable_and_its_range(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    assert name in str(info.value)
    assert expected in str(info.value)
    assert "invalid literal" not in str(info.value)


def test_sensible_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FAULTPRINT_RETENTION_DAYS": "36500",
        "FAULTPRINT_MAX_BODY_BYTES": " 1024 ",
        "FAULTPRINT_SPOOL_MAX_BYTES": "30000",
        "FAULTPRINT_DECODE_WORKERS": "-1",
        "FAULTPRINT_MAX_INFLIGHT_REQUESTS": "1",
        "FAULTPRINT_RATE_LIMIT_SPANS_PER_S": "0.5",
        "FAULTPRINT_CLUSTER_WRITES": " Local ",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.retention_days == 36500
    assert settings.max_body_bytes == 1024
    assert settings.spool_max_bytes == 30000
    assert settings.decode_workers == -1
    assert settings.max_inflight_requests == 1
    assert math.isclose(settings.rate_limit_spans_per_s, 0.5)
    assert settings.cluster_writes == "local"


def test_the_defaults_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n, _, _ in BAD_VALUES]:
        monkeypatch.delenv(name, raising=False)
    Settings().validate()
    assert Settings.from_env().retention_days == 90


@pytest.mark.parametrize(
    ("value", "scrub"),
    [
        *[("off", False), (" OFF ", False), ("0", False), ("no", False), ("false", False)],
        *[("on", True), ("1", True), ("Yes", True), ("true", True), ("", True), ("  ", True)],
    ],
)
def test_scrubbing_is_turned_on_or_off_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, scrub: bool
) -> None:
    monkeypatch.setenv("FAULTPRINT_SCRUB", value)
    assert Settings.from_env().scrub is scrub


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FAULTPRINT_RETENTION_DAYS", "٣"),  # Arabic-Indic 3: int() reads it
        ("FAULTPRINT_RETENTION_DAYS", "1_0"),  # int() reads 10
        ("FAULTPRINT_MAX_BODY_BYTES", "１０２４"),  # fullwidth digits
        ("FAULTPRINT_RATE_LIMIT_SPANS_PER_S", "٠.٥"),
        ("FAULTPRINT_SQL_TIMEOUT_S", "1_0.5"),
    ],
)
def test_a_number_in_other_digits_or_with_underscores_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    assert name in str(info.value) and "ASCII digits" in str(info.value)


def test_the_plain_number_forms_stay_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FAULTPRINT_RETENTION_DAYS": "+30",
        "FAULTPRINT_SQL_TIMEOUT_S": "1e3",
        "FAULTPRINT_RATE_LIMIT_SPANS_PER_S": " .5 ",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.retention_days == 30
    assert settings.sql_timeout_s == 1000.0
    assert settings.rate_limit_spans_per_s == 0.5
