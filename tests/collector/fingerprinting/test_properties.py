"""Properties: determinism, order independence, values never in a fingerprint."""

from __future__ import annotations

import random
import string
import uuid

from faultprint_collector.fingerprinting import (
    FailureRecord,
    _engine,
    _template,
    fingerprint,
    in_app_frames,
    line_fingerprint,
    template_of,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

WORDS = [
    "order",
    "failed",
    "because",
    "the",
    "limit",
    "was",
    "reached",
    "retry",
    "later",
    "cannot",
    "process",
    "request",
    "for",
    "in",
    "with",
    "value",
    "service",
]

# values of every kind the design says must never be part of a fingerprint
VALUE_KINDS = {
    "int": st.integers(min_value=-(10**12), max_value=10**12).map(str),
    "float": st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    "uuid": st.uuids().map(str),
    "hex": st.integers(min_value=2**32, max_value=2**64).map(lambda i: f"0x{i:x}"),
    "req_id": st.text(string.ascii_letters + string.digits, min_size=12, max_size=30).map(
        lambda s: "req_" + s + "9"
    ),
    "org_id": st.text(string.ascii_letters + string.digits, min_size=8, max_size=24).map(
        lambda s: "org-" + s + "1"
    ),
    "ip": st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    "email": st.from_regex(r"[a-z]{1,8}@[a-z]{2,8}\.(com|org|io)", fullmatch=True),
    "quoted": st.text(string.ascii_letters + " ", max_size=20).map(lambda s: f"'{s}'"),
    "duration": st.integers(1, 10**5).map(lambda i: f"{i}ms"),
    "timestamp": st.datetimes().map(lambda d: d.isoformat()),
    "path": st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=2, max_size=5).map(
        lambda p: "/" + "/".join(p)
    ),
    "model": st.sampled_from(["gpt-4o", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022"]),
}


@st.composite
def message_shapes(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A sentence of fixed words with value slots: (words, slot kinds)."""
    n = draw(st.integers(1, 10))
    words = [draw(st.sampled_from(WORDS)) for _ in range(n)]
    kinds = draw(st.lists(st.sampled_from(sorted(VALUE_KINDS)), min_size=1, max_size=4))
    return words, kinds


def render(words: list[str], kinds: list[str], values: list[str]) -> str:
    parts = list(words)
    for i, (k, v) in enumerate(zip(kinds, values, strict=True)):
        parts.insert(min(len(parts), 1 + 2 * i), f"{k} {v}" if i % 2 else v)
    return " ".join(parts)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(shape=message_shapes(), data=st.data())
def test_values_never_change_the_fingerprint(
    shape: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    words, kinds = shape
    a = [data.draw(VALUE_KINDS[k]) for k in kinds]
    b = [data.draw(VALUE_KINDS[k]) for k in kinds]
    ma, mb = render(words, kinds, a), render(words, kinds, b)
    ra = FailureRecord(category="exception", error_type="ValueError", message=ma, call_site="f")
    rb = FailureRecord(category="exception", error_type="ValueError", message=mb, call_site="f")
    assert fingerprint(ra).hex == fingerprint(rb).hex, (ma, mb, template_of(ma), template_of(mb))


@settings(max_examples=150)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_order_and_cache_state_never_change_a_fingerprint(
    msgs: list[str], rnd: random.Random
) -> None:
    _template.clear_caches()
    _engine.clear_caches()
    first = {m: line_fingerprint(m).hex for m in msgs}
    first_api = {m: fingerprint(FailureRecord(category="api_error", message=m)).hex for m in msgs}
    shuffled = msgs[:]
    rnd.shuffle(shuffled)
    _template.clear_caches()  # a second "replica", cold
    _engine.clear_caches()
    second = {m: line_fingerprint(m).hex for m in shuffled}
    second_api = {
        m: fingerprint(FailureRecord(category="api_error", message=m)).hex for m in shuffled
    }
    assert first == second
    assert first_api == second_api
    # and warm: every cache hit gives what the cold computation gave
    assert {m: line_fingerprint(m).hex for m in msgs} == first


@settings(max_examples=200)
@given(
    st.builds(
        FailureRecord,
        category=st.sampled_from(
            [
                "",
                "exception",
                "api_error",
                "timeout",
                "invalid_output",
                "refusal",
                "truncation",
                "tool_error",
                "bogus",
            ]
        ),
        error_type=st.text(max_size=30),
        message=st.text(max_size=300),
        stacktrace=st.text(max_size=200),
        finish_reason=st.text(max_size=15),
        output=st.one_of(st.none(), st.text(max_size=200)),
        call_site=st.one_of(
            st.text(max_size=30), st.sampled_from(["shopapp.orders.total", "openai.chat"])
        ),
        status_code=st.integers(0, 999),
        error_code=st.one_of(
            st.text(max_size=20),
            st.sampled_from(["invalid_request_error", "overloaded_error", "rate_limit_exceeded"]),
        ),
        provider=st.sampled_from(["", "openai", "anthropic"]),
        caller=st.text(max_size=30),
    )
)
def test_any_record_fingerprints_deterministically(record: FailureRecord) -> None:
    a = fingerprint(record)
    _template.clear_caches()
    b = fingerprint(record)
    assert a.hex == b.hex and a.coarse == b.coarse
    assert len(a.hex) == 16


MODELS = ["gpt-4o", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "o3-mini", "sonnet"]


@settings(max_examples=50)
@given(st.sampled_from(MODELS), st.sampled_from(MODELS))
def test_model_never_in_fingerprint(m1: str, m2: str) -> None:
    r1 = FailureRecord(
        category="api_error", model=m1, message=f"Error code: 404 - model {m1} does not exist"
    )
    r2 = FailureRecord(
        category="api_error", model=m2, message=f"Error code: 404 - model {m2} does not exist"
    )
    assert fingerprint(r1).hex == fingerprint(r2).hex


def test_uuid_in_any_position_is_masked() -> None:
    u = str(uuid.UUID(int=12345))
    assert u not in template_of(f"x {u}") and u not in template_of(f"{u}: boom")


_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)


@settings(max_examples=200)
@given(package=_NAME, module=_NAME, function=_NAME)
def test_an_installed_application_reads_as_its_source_checkout(
    package: str, module: str, function: str
) -> None:
    assume(package != "faultprint")  # the SDK's own files are never the application's
    frames = [("{root}/" + package + "/" + module + ".py", function)]
    frames.append(("{site}/requests/api.py", "get"))

    def traceback(root: str) -> str:
        site = "/usr/local/lib/python3.12/site-packages"
        lines = ["Traceback (most recent call last):"]
        for path, func in frames:
            lines.append(f'  File "{path.format(root=root, site=site)}", line 7, in {func}')
        return "\n".join([*lines, "ValueError: x"])

    installed = in_app_frames(
        traceback("/usr/local/lib/python3.12/site-packages"), app_package=package
    )
    assert installed == in_app_frames(traceback("/srv/checkout"))
    assert installed  # the application's frame is kept, the library's is not
