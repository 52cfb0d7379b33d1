"""What an exception says about a failed call: its chain, its category, its text."""

from __future__ import annotations

from typing import Any

import pydantic
from faultprint._errors import classify_exception, content_free_exception, exception_chain


class RateLimited(Exception):
    """A provider HTTP error, as the providers' libraries shape theirs."""

    status_code = 429
    code = "rate_limit_exceeded"
    response = None


def raised(exc: BaseException) -> BaseException:
    """``exc`` after it was raised (with a traceback, as a caught one has)."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_the_chain_of_a_plain_exception_is_its_causes_and_contexts() -> None:
    root = ValueError("root")
    try:
        try:
            raise root
        except ValueError as exc:
            raise KeyError("handling") from exc
    except KeyError as exc:
        top = exc
    assert exception_chain(top) == [top, root]
    hidden = RuntimeError("hidden")
    hidden.__context__ = root
    hidden.__suppress_context__ = True
    assert exception_chain(hidden) == [hidden]
    assert exception_chain(hidden, suppressed=True) == [hidden, root]


def test_the_chain_reaches_the_members_of_exception_groups() -> None:
    limit, cause, bug = RateLimited("slow down"), OSError("reset"), KeyError("k")
    wrapped = RuntimeError("no answer")
    wrapped.__cause__ = cause
    inner = ExceptionGroup("inner", [bug])
    group = ExceptionGroup("unhandled errors in a TaskGroup", [limit, wrapped, inner])
    chain = exception_chain(group)
    assert chain[0] is group
    assert {id(e) for e in chain} == {id(e) for e in (group, limit, wrapped, cause, inner, bug)}


def test_the_chain_through_a_large_group_is_bounded() -> None:
    members = [RateLimited(str(i)) for i in range(10_000)]
    chain = exception_chain(ExceptionGroup("fan-out", members))
    assert chain[1] is members[0]
    assert len(chain) < len(members)


def test_a_group_is_classified_as_its_members_when_they_agree() -> None:
    limit = ("api_error", "rate_limit_exceeded", 429)
    assert classify_exception(RateLimited()) == limit
    assert classify_exception(ExceptionGroup("one", [RateLimited()])) == limit
    assert classify_exception(ExceptionGroup("two", [RateLimited(), RateLimited()])) == limit
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [RateLimited()])])
    assert classify_exception(nested) == limit
    assert classify_exception(ExceptionGroup("t", [TimeoutError()])) == ("timeout", None, None)


def test_a_group_of_unrelated_members_is_an_exception() -> None:
    mixed = ExceptionGroup("mixed", [RateLimited(), KeyError("k")])
    assert classify_exception(mixed) == ("exception", None, None)
    slow = ExceptionGroup("slow", [RateLimited(), TimeoutError()])
    assert classify_exception(slow) == ("exception", None, None)


class Address(pydantic.BaseModel):
    street: int


def test_a_validation_error_in_a_group_is_written_without_the_value() -> None:
    try:
        Address.model_validate({"street": "Jane Doe, 12 Main St"})
    except pydantic.ValidationError as exc:
        invalid: Any = exc
    group = raised(ExceptionGroup("unhandled errors in a TaskGroup", [invalid]))
    rewritten = content_free_exception(group)
    assert rewritten is not None
    message, trace = rewritten
    assert message == "unhandled errors in a TaskGroup (1 sub-exception)"
    assert "Main St" not in message + trace
    # the group's own frames and message
    assert ", in raised\n" in trace
    assert "ExceptionGroup: unhandled errors in a TaskGroup" in trace


def _raised_in(source: str, path: str, names: dict[str, Any]) -> BaseException:
    try:
        exec(compile(source, path, "exec"), names)
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_frame_modules_name_the_module_each_file_runs_as() -> None:
    from faultprint._errors import frame_modules

    def inner() -> None:
        raise ValueError("x")

    try:
        inner()
    except ValueError as exc:
        assert frame_modules(exc) == (f"{__name__} {__file__}",)  # one file, named once
    script = _raised_in("raise KeyError(1)", "/home/ci/shop/worker.py", {"__name__": "__main__"})
    assert frame_modules(script)[-1] == "worker /home/ci/shop/worker.py"
    spec = type("Spec", (), {"name": "shop.cli"})()  # python -m shop.cli
    run_as = _raised_in(
        "raise KeyError(1)", "/srv/shop/cli.py", {"__name__": "__main__", "__spec__": spec}
    )
    assert frame_modules(run_as)[-1] == "shop.cli /srv/shop/cli.py"
    assert frame_modules(KeyError("never raised")) == ()
