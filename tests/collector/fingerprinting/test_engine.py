"""Strategies per category: what identifies a failure mode, and what never does."""

from __future__ import annotations

import json
import traceback
from dataclasses import replace

import faultprint
import jsonschema
import pydantic
import pytest
from faultprint_collector.fingerprinting import (
    STRATEGY,
    FailureRecord,
    Fingerprint,
    category_from_fields,
    explain,
    fingerprint,
    generalise_path,
    in_app_frames,
    inspect_output,
    line_fingerprint,
)


def fp(**kw: object) -> str:
    return fingerprint(FailureRecord(**kw)).hex  # type: ignore[arg-type]


# --- api errors -------------------------------------------------------------


ANTHROPIC_529 = (
    "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', "
    "'message': 'Overloaded'}}"
)


def test_api_error_from_structure_not_prose() -> None:
    a = (
        "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o in organization "
        "org-abc on tokens per min (TPM): Limit 1, Used 2.', 'type': 'tokens', 'param': None, "
        "'code': 'rate_limit_exceeded'}}"
    )
    b = (
        'Error code: 429 - {"error": {"message": "Totally different wording 99", "type": '
        '"tokens", "param": null, "code": "rate_limit_exceeded"}}'
    )
    fa = fingerprint(FailureRecord(category="api_error", message=a, call_site="s"))
    assert fa.components["error_code"] == "rate_limit_exceeded"
    assert fa.components["kind"] == "rate_limit_exceeded"
    assert fa.hex == fp(category="api_error", message=b, call_site="s")
    other = a.replace("rate_limit_exceeded", "insufficient_quota")
    assert fa.hex != fp(category="api_error", message=other, call_site="s")


def test_anthropic_error_type_and_status() -> None:
    f = fingerprint(FailureRecord(category="", message=ANTHROPIC_529, call_site="x"))
    assert f.category == "api_error"
    assert f.components["kind"] == "overloaded_error"
    # the same body, classified by another path as a plain exception: same mode
    assert f.hex == fp(category="exception", message=ANTHROPIC_529, call_site="x")


def test_a_specific_provider_code_is_one_mode_with_or_without_an_http_status() -> None:
    """An error the provider sends inside a stream (an HTTP 200, so no status)
    is the mode its code names when it comes as an HTTP error: an overloaded
    API is one failure mode whether it was met before or during streaming."""
    for code, status in (("overloaded_error", 529), ("rate_limit_exceeded", 429)):
        http = fingerprint(
            FailureRecord(category="api_error", status_code=status, error_code=code, call_site="x")
        )
        streamed = fingerprint(FailureRecord(category="api_error", error_code=code, call_site="x"))
        assert http.fine == streamed.fine and http.coarse == streamed.coarse
        assert http.components["kind"] == code
    # a generic type keeps its status: a 400 and a 413 are different problems
    generic = [
        fingerprint(
            FailureRecord(
                category="api_error",
                status_code=status,
                error_code="invalid_request_error",
                message="request rejected",
                call_site="x",
            )
        )
        for status in (400, 413)
    ]
    assert generic[0].fine != generic[1].fine
    assert generic[0].components["kind"] == "http_400:invalid_request_error"


def test_api_error_prose_without_code_uses_template() -> None:
    a = "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', 'message': 'prompt is too long: 215000 tokens > 200000 maximum'}}"  # noqa: E501
    b = a.replace("215000", "399999")
    c = a.replace("prompt is too long: 215000 tokens > 200000 maximum", "max_tokens: 5 > 4")
    assert fp(message=a, category="") == fp(message=b, category="")
    assert fp(message=a, category="") != fp(message=c, category="")


def test_status_code_field_and_unparseable_body() -> None:
    a = fp(category="", status_code=502, message="<html>Bad Gateway 1</html>")
    b = fp(category="", status_code=502, message="<html>Bad Gateway 2</html>")
    assert a == b
    assert fingerprint(FailureRecord(category="", status_code=502)).category == "api_error"


# --- invalid output ---------------------------------------------------------------


class Item(pydantic.BaseModel):
    sku: str
    price: float


class Order(pydantic.BaseModel):
    items: list[Item]


def pydantic_message(data: object) -> str:
    try:
        Order.model_validate(data)
    except pydantic.ValidationError as e:
        return str(e)
    raise AssertionError("valid")


def test_pydantic_paths_generalised_and_counts_ignored() -> None:
    one = pydantic_message({"items": [{"sku": "a"}]})
    three = pydantic_message({"items": [{"sku": "a", "price": 1}, {"sku": "b"}, {"sku": "c"}]})
    f1 = fingerprint(FailureRecord(category="invalid_output", message=one))
    assert f1.components["errors"] == ["missing@items.*.price"]
    assert f1.hex == fp(category="invalid_output", message=three)
    wrong_type = pydantic_message({"items": [{"sku": "a", "price": "ten"}]})
    assert f1.hex != fp(category="invalid_output", message=wrong_type)


def test_sdk_detail_and_message_agree() -> None:
    detail = {"validator": "pydantic", "errors": [{"kind": "missing", "path": "items.3.price"}]}
    by_detail = fingerprint(FailureRecord(category="invalid_output", detail=detail))
    by_message = fingerprint(
        FailureRecord(category="invalid_output", message=pydantic_message({"items": [{}, {}]}))
    )
    assert "missing@items.*.price" in by_detail.components["errors"]
    assert by_message.components["errors"] == ["missing@items.*.price", "missing@items.*.sku"]


def test_jsonschema_kind_and_path() -> None:
    schema = {"type": "object", "properties": {"s": {"enum": ["a", "b"]}}, "required": ["s"]}
    msgs = []
    for inst in ({"s": "zz"}, {"s": "other"}, {}):
        try:
            jsonschema.validate(inst, schema)
        except jsonschema.ValidationError as e:
            msgs.append(str(e))
    f = [
        fingerprint(FailureRecord(category="", error_type="ValidationError", message=m))
        for m in msgs
    ]
    assert f[0].components["errors"] == ["enum@s"]
    assert f[0].hex == f[1].hex
    assert f[2].components["errors"] == ["required@s"]
    # the first line alone (as some loggers keep it) gives the same kind
    assert fingerprint(
        FailureRecord(category="invalid_output", message=msgs[2].split("\n")[0])
    ).components["errors"] == ["required@s"]


def json_error(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return str(e)
    raise AssertionError("valid")


@pytest.mark.parametrize(
    ("output", "category", "mode"),
    [
        ('```json\n{"a": 1}\n```', "invalid_output", "wrapped_json"),
        ('Here you go:\n{"a": 1}', "invalid_output", "wrapped_json"),
        ('{"a": [1, 2, {"b": "cut', "invalid_output", "truncated_json"),
        ("{'a': 1}", "invalid_output", "malformed_json"),
        ("I'm sorry, but I can't help with that.", "refusal", ""),
        ("  \n ", "empty_output", ""),  # whitespace only: nothing was said
    ],
)
def test_output_decides_between_wrapped_json_refusal_and_truncation(
    output: str, category: str, mode: str
) -> None:
    f = fingerprint(
        FailureRecord(
            category="invalid_output",
            error_type="JSONDecodeError",
            message=json_error(output)
            if output.strip()
            else "Expecting value: line 1 column 1 (char 0)",
            output=output,
            call_site="app.extract",
        )
    )
    assert f.category == category
    if mode:
        assert f.components["json_mode"] == mode


def test_wrapped_and_refusal_differ_although_the_error_is_the_same() -> None:
    msg = "Expecting value: line 1 column 1 (char 0)"
    wrapped = fp(category="invalid_output", message=msg, output='```json\n{"x": 2}\n```')
    refusal = fp(category="invalid_output", message=msg, output="I cannot comply with that.")
    assert wrapped != refusal


def test_inspect_output_shapes() -> None:
    assert inspect_output("") == "empty"
    assert inspect_output('{"a": 1} hope this helps') == "wrapped_json"
    assert inspect_output("[1, 2") == "truncated_json"
    assert inspect_output("just words") == "prose"


def test_generalise_path_forms() -> None:
    for p in ("items.0.price", "items[12].price", "/items/3/price", "['items'][0]['price']"):
        assert generalise_path(p) == "items.*.price"
    assert generalise_path(["items", 0, "price"]) == "items.*.price"


# --- JSON decode errors raised by application code: the output decides -------------

INVOICE = json.dumps(
    {
        "invoice_id": "INV-000812",
        "customer": "Acme Corp",
        "items": [{"sku": "A-1", "qty": 2, "price": 9.5}, {"sku": "B-22", "qty": 1}],
        "total": 139.0,
        "notes": "deliver before friday",
    }
)


def json_exception(output: str, message: str | None = None) -> object:
    return fingerprint(
        FailureRecord(
            category="exception",
            error_type="json.decoder.JSONDecodeError",
            message=json_error(output) if message is None else message,
            output=output,
            call_site="shop.extract_invoice",
        )
    )


def test_json_cut_at_any_point_is_one_fingerprint_whatever_python_says() -> None:
    cuts = [INVOICE[:n] for n in range(1, len(INVOICE) - 1)]
    messages = {json_error(c).split(":")[0] for c in cuts}
    # the cuts really produce several different decoder messages
    assert {"Unterminated string starting at", "Expecting value"} <= messages
    assert "Expecting ',' delimiter" in messages
    prints = {json_exception(c).hex for c in cuts}  # type: ignore[attr-defined]
    assert len(prints) == 1
    assert json_exception(cuts[0]).components["kind"] == "json_truncated"  # type: ignore[attr-defined]


def test_prose_wrapped_json_is_not_a_truncation_although_the_message_matches() -> None:
    wrapped = json_exception("Here is the extracted invoice:\n" + INVOICE)
    cut = json_exception(INVOICE[:10])  # '{"invoice_' : a message of its own
    cut_value = json_exception('{"invoice_id": ', "Expecting value: line 1 column 16 (char 15)")
    assert wrapped.components["kind"] == "json_wrapped"  # type: ignore[attr-defined]
    assert cut_value.hex == cut.hex != wrapped.hex  # type: ignore[attr-defined]
    fenced = json_exception("```json\n" + INVOICE + "\n```")
    assert fenced.components["kind"] == "json_wrapped"  # type: ignore[attr-defined]


def test_json_extra_data_and_refusal_from_the_output() -> None:
    extra = json_exception(INVOICE + "\n\nLet me know if you need anything else.")
    assert extra.components["kind"] == "json_extra_data"  # type: ignore[attr-defined]
    refusal = json_exception("I'm sorry, but I can't help with that.")
    assert refusal.category == "refusal"  # type: ignore[attr-defined]


def test_json_error_without_output_keeps_the_message_template() -> None:
    f = fingerprint(
        FailureRecord(
            category="exception",
            error_type="JSONDecodeError",
            message="Expecting value: line 1 column 149 (char 148)",
            call_site="shop.extract_invoice",
        )
    )
    assert f.components["kind"] == "JSONDecodeError"
    assert f.components["template"] == "Expecting value: line <*> column <*> (char <*>)"


# --- exceptions: type, template, in-app frames ---------------------------------------


def _inner(d: dict) -> object:
    return d["missing"]


def _outer(d: dict) -> object:
    return _inner(d)


def real_traceback() -> str:
    try:
        _outer({})
    except KeyError:
        return traceback.format_exc()
    raise AssertionError


TB = """Traceback (most recent call last):
  File "{root}/shop/orders.py", line {n}, in order_total
    return sum(price_of(i) for i in items)
  File "{root}/shop/orders.py", line {m}, in price_of
    return PRICES[sku]
  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode
    obj, end = self.raw_decode(s, idx=_w(s, 0).end())
KeyError: 'SKU-{sku}'
"""


def test_frames_never_include_line_numbers_paths_or_library_code() -> None:
    a = TB.format(root="/srv/app/src", n=10, m=20, sku=1)
    b = TB.format(root="/home/ci/build", n=99, m=7, sku=2)
    assert in_app_frames(a) == ["shop.orders.order_total", "shop.orders.price_of"]
    assert fp(category="exception", stacktrace=a) == fp(category="exception", stacktrace=b)
    other_fn = a.replace("in price_of", "in price_of_v2")
    assert fp(category="exception", stacktrace=a) != fp(category="exception", stacktrace=other_fn)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("/srv/rel-1.0", "/srv/rel-1.1"),
        ("/srv/app/releases/20240601120000", "/srv/app/releases/20241003093000"),
        ("/builds/3f9c2e1", "/builds/a07b5d4e9c"),
    ],
)
def test_a_script_in_a_release_directory_keeps_its_fingerprint_across_releases(
    one: str, other: str
) -> None:
    """A redeploy into the next release directory moves no fingerprint."""
    tb = (
        "Traceback (most recent call last):\n"
        '  File "{root}/worker.py", line 12, in summarise\n'
        "ValueError: cannot parse order 40"
    )
    a = FailureRecord(category="exception", stacktrace=tb.format(root=one), call_site="w.s")
    b = replace(a, stacktrace=tb.format(root=other))
    assert fingerprint(a).hex == fingerprint(b).hex
    # a script of another directory is still another module
    c = replace(a, stacktrace=tb.format(root="/srv/tools"))
    assert fingerprint(a).hex != fingerprint(c).hex


def test_real_traceback_frames_and_type_from_tail() -> None:
    tb = real_traceback()
    f = fingerprint(FailureRecord(category="", stacktrace=tb))
    assert f.error_type == "KeyError"
    assert f.components["frames"][-2:] == [
        "fingerprinting.test_engine._outer",
        "fingerprinting.test_engine._inner",
    ]


def test_frames_exclude_the_sdk_wrapper() -> None:
    @faultprint.observe
    def extract(text: str) -> object:
        return json.loads(text)

    try:
        extract('{"a": "cu')
    except json.JSONDecodeError:
        tb = traceback.format_exc()
    else:
        raise AssertionError
    assert "faultprint/_observe.py" in tb.replace("\\", "/")  # the wrapper is on the stack
    assert in_app_frames(tb) == [
        "fingerprinting.test_engine.test_frames_exclude_the_sdk_wrapper",
        "fingerprinting.test_engine.extract",
    ]
    sdk = '  File "/opt/venv/src/faultprint/integrations/_openai.py", line 9, in create\n'
    app = '  File "/srv/app/shop/orders.py", line 3, in run\n'
    assert in_app_frames(f"Traceback:\n{app}{sdk}ValueError: x\n") == ["shop.orders.run"]
    # only the package's own files: an app under a directory named faultprint stays
    mine = '  File "/home/me/faultprint/shop/orders.py", line 3, in run\n'
    assert in_app_frames(f"Traceback:\n{mine}ValueError: x\n") == ["shop.orders.run"]


def test_recursion_depth_does_not_split() -> None:
    frame = '  File "/app/pkg/walk.py", line {n}, in walk\n    walk(x)\n'
    tb = "Traceback (most recent call last):\n{}RecursionError: too deep\n"
    a = tb.format("".join(frame.format(n=i) for i in range(3)))
    b = tb.format("".join(frame.format(n=i) for i in range(50)))
    assert fp(category="exception", stacktrace=a) == fp(category="exception", stacktrace=b)


def test_error_type_module_does_not_matter() -> None:
    assert fp(error_type="openai.APIConnectionError", message="Connection error.") == fp(
        error_type="APIConnectionError", message="Connection error."
    )


# --- call-site categories, tools, hierarchy ---------------------------------------------


def test_refusal_wording_is_not_identity_but_call_site_is() -> None:
    a = fp(category="refusal", output="I'm sorry, I can't.", call_site="a.f")
    b = fp(category="refusal", output="As an AI I must decline this.", call_site="a.f")
    c = fp(category="refusal", output="I'm sorry, I can't.", call_site="a.g")
    assert a == b != c


def test_truncation_from_finish_reason_dialects() -> None:
    a = fingerprint(FailureRecord(category="", finish_reason="length", call_site="f"))
    b = fingerprint(FailureRecord(category="", finish_reason="MAX_TOKENS", call_site="f"))
    assert a.category == b.category == "truncation"
    assert a.hex == b.hex


def test_tool_errors() -> None:
    unknown_a = fp(category="tool_error", detail={"tool": "get_wether", "reason": "unknown_tool"})
    unknown_b = fp(category="tool_error", detail={"tool": "browse", "reason": "unknown_tool"})
    assert unknown_a == unknown_b  # model-invented names are not identity
    bad = {
        "tool": "refund",
        "reason": "invalid_arguments",
        "errors": [{"kind": "missing", "path": "amount"}],
    }
    bad2 = {**bad, "tool": "lookup"}
    assert fp(category="tool_error", detail=bad) != fp(category="tool_error", detail=bad2)


def test_model_is_never_part_of_a_fingerprint() -> None:
    for category in ("exception", "timeout", "api_error", "refusal"):
        a = fingerprint(
            FailureRecord(category=category, model="sonnet", message="model sonnet failed hard")
        )
        b = fingerprint(
            FailureRecord(category=category, model="haiku", message="model haiku failed hard")
        )
        assert a.hex == b.hex, category
    plain = "backend sonnet exploded"  # a model name that is a plain word
    assert fp(message=plain, model="sonnet") == fp(
        message=plain.replace("sonnet", "opus"), model="opus"
    )


def test_coarse_groups_fine_modes_of_one_kind() -> None:
    a = fingerprint(FailureRecord(category="exception", error_type="ValueError", message="bad a"))
    b = fingerprint(FailureRecord(category="exception", error_type="ValueError", message="bad b c"))
    assert a.fine != b.fine and a.coarse == b.coarse
    assert a.coarse != a.fine


def test_explain_lists_the_components() -> None:
    f = fingerprint(FailureRecord(category="", message=ANTHROPIC_529, call_site="shop.extract"))
    text = explain(f)
    assert f.hex in text and STRATEGY in text
    for key in ("call_site", "category", "kind", "status", "provider_type"):
        assert key in text
    assert "shop.extract" in text and "overloaded_error" in text


def test_category_inference() -> None:
    assert category_from_fields(error_type="httpx.ReadTimeout") == "timeout"
    assert category_from_fields(finish_reason="content_filter") == "content_filter"
    assert category_from_fields(status_code=429) == "api_error"
    assert category_from_fields(message="Expecting value: line 1 column 1 (char 0)") == (
        "invalid_output"
    )
    assert category_from_fields(error_type="UnknownToolError", message="x") == "tool_error"
    assert category_from_fields(output="") == "empty_output"
    assert category_from_fields(output="Sorry, I can't do that.") == "refusal"
    assert category_from_fields(error_type="ValueError", message="x") == "exception"
    assert category_from_fields(category="Truncated") == "truncation"


def test_pinned_fingerprints_of_this_strategy_version() -> None:
    # Stored fingerprints must keep their meaning: when a change to the engine
    # moves any of these, it is a new strategy version (bump STRATEGY and
    # re-pin), never a silent reshuffle.
    assert STRATEGY == "v7"
    assert (
        fingerprint(
            FailureRecord(category="api_error", message=ANTHROPIC_529, call_site="shop.extract")
        ).hex
        == "c37ff0e7492302aa"
    )
    tb = "Traceback (most recent call last):\n  File \"/srv/shop/orders.py\", line 9, in total\nKeyError: 'price'"  # noqa: E501
    rec = FailureRecord(
        category="exception",
        error_type="KeyError",
        message="'price'",
        stacktrace=tb,
        call_site="shop.total",
    )
    assert fingerprint(rec).hex == "daa661baae81513e"
    assert (
        fingerprint(FailureRecord(category="refusal", call_site="shop.extract")).coarse_hex
        == "669146123e637835"
    )
    assert line_fingerprint("Connection closed by 10.0.0.1 [preauth]").hex == "71c0f9f1c60c9dff"
    cut = FailureRecord(
        category="exception",
        error_type="JSONDecodeError",
        message="Unterminated string starting at: line 1 column 30 (char 29)",
        output='{"invoice_id": "INV-000812", "custo',
        call_site="shop.extract",
    )
    assert fingerprint(cut).hex == "2caaf20809ca7e6a"


ANTHROPIC_400 = (
    "Error code: 400 - {'type': 'error', 'error': {'type': 'invalid_request_error', "
    "'message': '%s'}}"
)


@pytest.mark.parametrize(
    "error_code",
    [
        "",  # read from the message alone (another instrumentation's exception event)
        "invalid_request_error",  # recorded as the code (the SDK; anthropic has no codes)
    ],
)
def test_a_generic_provider_type_lets_the_prose_decide_however_it_was_recorded(
    error_code: str,
) -> None:
    def fp400(prose: str) -> Fingerprint:
        return fingerprint(
            FailureRecord(
                category="api_error",
                message=ANTHROPIC_400 % prose,
                status_code=400,
                error_code=error_code,
                call_site="shop.extract",
            )
        )

    too_long = fp400("prompt is too long: 224593 tokens > 200000 maximum")
    too_long_again = fp400("prompt is too long: 215766 tokens > 200000 maximum")
    max_tokens = fp400("max_tokens: 100000 > 8192, which is the maximum allowed number")
    assert too_long.fine == too_long_again.fine
    assert too_long.fine != max_tokens.fine  # two problems, one generic type
    assert too_long.coarse == max_tokens.coarse  # one kind: http_400:invalid_request_error
    assert too_long.components["kind"] == "http_400:invalid_request_error"


def test_specific_provider_type_ignores_the_prose() -> None:
    other = ANTHROPIC_529.replace("'Overloaded'", "'Servers are busy, retry in 30s'")
    assert fp(message=ANTHROPIC_529, category="") == fp(message=other, category="")


def _traceback(*frames: tuple[str, int, str], error: str = "KeyError: 'price'") -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, func in frames:
        lines += [f'  File "{path}", line {line}, in {func}', "    ..."]
    return "\n".join([*lines, error])


def test_an_application_installed_as_a_package_keeps_its_in_app_frames() -> None:
    """An image built with ``pip install .`` puts the application in
    site-packages: its frames stay in-app (the package the decorated call
    site names) and read as from a source checkout, so installing the
    application moves no fingerprint and two code paths stay two modes."""
    site = "/usr/local/lib/python3.12/site-packages"
    lib = (f"{site}/httpx/_client.py", 900, "send")

    def record(root: str, func: str) -> FailureRecord:
        stack = _traceback(
            (f"{root}/shopapp/api.py", 12, "handle"),
            (f"{root}/shopapp/orders.py", 40, func),
            lib,
        )
        return FailureRecord(
            category="exception",
            error_type="KeyError",
            message="'price'",
            stacktrace=stack,
            call_site="shopapp.orders.checkout",
        )

    installed = fingerprint(record(site, "total"))
    assert installed.components["frames"] == ["shopapp.api.handle", "shopapp.orders.total"]
    assert installed.fine == fingerprint(record("/srv/shop", "total")).fine
    assert installed.fine != fingerprint(record(site, "refund")).fine


def test_a_provider_endpoint_call_site_names_no_application_package() -> None:
    """``openai.chat`` (a client integration's call site) is no package of the
    application: the provider library's installed frames stay library frames."""
    site = "/usr/local/lib/python3.12/site-packages"
    stack = _traceback(
        ("/srv/shop/shopapp/orders.py", 40, "total"),
        (f"{site}/openai/_base_client.py", 1000, "request"),
        error="TypeError: bad argument",
    )
    record = FailureRecord(
        category="exception",
        error_type="TypeError",
        message="bad argument",
        stacktrace=stack,
        call_site="openai.chat",
        provider="openai",
    )
    assert fingerprint(record).components["frames"] == ["shopapp.orders.total"]
    # installed, the application's frames are its own by the caller the SDK records
    installed = stack.replace("/srv/shop", site)
    assert fingerprint(replace(record, stacktrace=installed)).components["frames"] == []
    by_caller = replace(record, stacktrace=installed, caller="shopapp.orders.total")
    assert fingerprint(by_caller).components["frames"] == ["shopapp.orders.total"]


@pytest.mark.parametrize(
    ("record", "shown"),
    [
        (
            FailureRecord(
                category="exception",
                error_type="json.decoder.JSONDecodeError",
                message="Unterminated string starting at: line 1 column 30 (char 29)",
                output='{"invoice": 12, "customer": "Ac',
                call_site="shop.extract",
            ),
            "JSON output cut off before its end",
        ),
        (
            FailureRecord(category="api_error", status_code=429, error_code="rate_limit_exceeded"),
            "provider error rate_limit_exceeded",
        ),
        (FailureRecord(category="refusal", call_site="s"), "the model refused"),
        (FailureRecord(category="truncation", call_site="s"), "output cut off at the length limit"),
        (
            FailureRecord(
                category="tool_error", detail={"reason": "unknown_tool", "tool": "refund"}
            ),
            "call of a tool that does not exist",
        ),
        (
            FailureRecord(
                category="invalid_output",
                detail={"errors": [{"type": "missing", "loc": ["total"]}]},
            ),
            "invalid_output: missing@total",
        ),
        (
            # the SDK's json=True check names the output's shape
            FailureRecord(
                category="invalid_output",
                detail={"validator": "json", "errors": [{"kind": "truncated_json", "path": ""}]},
            ),
            "JSON output cut off before its end",
        ),
        (
            FailureRecord(
                category="invalid_output",
                detail={"validator": "pydantic", "errors": [{"kind": "prose", "path": ""}]},
            ),
            "prose where JSON was expected",
        ),
    ],
)
def test_a_mode_without_a_message_template_is_described(record: FailureRecord, shown: str) -> None:
    """What the incident lists show for a mode whose message is not its
    identity: never an empty template. The description is not hashed."""
    fp = fingerprint(record)
    assert fp.template == shown
    assert "template" not in fp.components
