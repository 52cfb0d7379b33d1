"""Every way code calls a model: generators, async, methods, nesting, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import gc
import inspect
import pickle

import faultprint
import pydantic
import pytest
from faultprint import attributes as A
from opentelemetry import trace
from opentelemetry.trace import StatusCode


@faultprint.observe(model="m", provider="openai")
def stream_words(n: int):
    for i in range(n):
        yield f"w{i} "


@faultprint.observe(model="m", provider="openai")
def stream_then_fail():
    yield "partial"
    raise ConnectionResetError("stream cut")


@faultprint.observe(model="m", provider="openai")
async def astream(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield f"a{i}"


def test_generator_span_ends_when_exhausted(spans):
    gen = stream_words(3)
    assert spans.all() == []  # nothing ended before the stream is consumed
    assert "".join(gen) == "w0 w1 w2 "
    span = spans.one()
    assert span.attributes[A.FP_STREAM_CHUNKS] == 3
    assert span.attributes[A.FP_STREAM_TTFC_MS] >= 0
    assert span.status.status_code == StatusCode.UNSET


def test_generator_closed_early_and_abandoned(spans):
    gen = stream_words(10)
    next(gen)
    gen.close()
    gen2 = stream_words(10)
    next(gen2)
    next(gen2)
    del gen2
    gc.collect()
    closed, abandoned = spans.all()
    assert closed.attributes["faultprint.stream.closed_early"] is True
    assert closed.attributes[A.FP_STREAM_CHUNKS] == 1
    assert abandoned.attributes[A.FP_STREAM_CHUNKS] == 2
    assert abandoned.end_time is not None


def test_generator_exception_mid_stream(spans):
    gen = stream_then_fail()
    assert next(gen) == "partial"
    with pytest.raises(ConnectionResetError):
        next(gen)
    span = spans.one()
    assert span.attributes[A.ERROR_TYPE] == "ConnectionResetError"
    assert span.status.status_code == StatusCode.ERROR
    # what arrived before the failure is kept
    assert span.attributes[A.FP_STREAM_CHUNKS] == 1
    assert A.FP_STREAM_TTFC_MS in span.attributes


def test_generator_yielding_nothing_is_empty_output(spans):
    assert list(stream_words(0)) == []
    assert spans.one().attributes[A.FP_FAILURE_CATEGORY] == "empty_output"


def test_async_generator(spans):
    async def consume():
        return [x async for x in astream(4)]

    assert asyncio.run(consume()) == ["a0", "a1", "a2", "a3"]
    span = spans.one()
    assert span.attributes[A.FP_STREAM_CHUNKS] == 4


def test_async_generator_closed_early(spans):
    async def consume():
        agen = astream(10)
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(consume())
    span = spans.one()
    assert span.attributes["faultprint.stream.closed_early"] is True


class Assistant:
    @faultprint.observe(model="m", provider="openai")
    def answer(self, question: str) -> str:
        return f"answer to {question}"

    @faultprint.observe(model="m")
    @staticmethod
    def static(q: str) -> str:
        return q

    @faultprint.observe(model="m")
    @classmethod
    def klass(cls, q: str) -> str:
        return cls.__name__ + q


def test_methods_static_and_class_methods(spans):
    a, b = Assistant(), Assistant()
    assert a.answer("q") == "answer to q"
    assert b.answer("q") == "answer to q"
    assert Assistant.static("s") == "s"
    assert Assistant.klass("k") == "Assistantk"
    s1, s2, s3, s4 = spans.all()
    assert s1.attributes[A.FP_CALL_SITE] == f"{__name__}.Assistant.answer"
    # self is reduced to its type: two instances, same input, same hash
    assert s1.attributes[A.FP_INPUT_HASH] == s2.attributes[A.FP_INPUT_HASH]
    assert s3.attributes[A.FP_CALL_SITE] == f"{__name__}.Assistant.static"
    assert s4.attributes[A.FP_CALL_SITE] == f"{__name__}.Assistant.klass"


class Streamer:
    @faultprint.observe(model="m")
    def words(self, n: int):
        yield from (f"w{i}" for i in range(n))

    @faultprint.observe(model="m")
    async def awords(self, n: int):
        for i in range(n):
            yield f"a{i}"

    @faultprint.observe(model="m")
    @staticmethod
    def static(n: int):
        yield from range(n)

    @faultprint.observe(model="m")
    @classmethod
    def klass(cls, n: int):
        yield from [cls.__name__] * n


def test_decorated_generator_functions_are_still_generator_functions(spans):
    # Frameworks tell streaming functions and yield fixtures by these.
    assert inspect.isgeneratorfunction(stream_words)
    assert inspect.isasyncgenfunction(astream)
    assert not inspect.isasyncgenfunction(stream_words)
    assert not inspect.isgeneratorfunction(astream)
    s = Streamer()
    for fn in (s.words, Streamer.words, s.static, Streamer.static, s.klass, Streamer.klass):
        assert inspect.isgeneratorfunction(fn), fn
    assert inspect.isasyncgenfunction(s.awords)
    assert list(inspect.signature(stream_words).parameters) == ["n"]
    assert list(inspect.signature(s.words).parameters) == ["n"]  # self bound
    assert stream_words.__name__ == "stream_words"
    assert s.words.__name__ == "words"
    # ... and still observed, as methods too
    assert list(s.words(2)) == ["w0", "w1"]
    assert list(Streamer.static(1)) == [0]
    assert list(s.klass(1)) == ["Streamer"]

    async def consume():
        return [x async for x in s.awords(2)]

    assert asyncio.run(consume()) == ["a0", "a1"]
    sites = [span.attributes[A.FP_CALL_SITE] for span in spans.all()]
    assert sites == [
        f"{__name__}.Streamer.words",
        f"{__name__}.Streamer.static",
        f"{__name__}.Streamer.klass",
        f"{__name__}.Streamer.awords",
    ]


@pytest.fixture
@faultprint.observe(model="m")
def drafted():
    yield "a draft"


def test_a_decorated_generator_is_a_yield_fixture(spans, drafted):
    # pytest tells a yield fixture by inspect.isgeneratorfunction: a plain
    # wrapper function would have made the fixture's value the generator.
    assert drafted == "a draft"


def test_decorated_generator_functions_copy_and_pickle_by_name():
    assert copy.copy(stream_words) is stream_words
    assert copy.deepcopy(astream) is astream
    assert pickle.loads(pickle.dumps(stream_words)) is stream_words


# --- the kind of the function actually called -----------------------------------
def sync_facade(afn):
    """A synchronous face for an async function, as applications write them."""

    @functools.wraps(afn)
    def run(*args):
        return asyncio.run(afn(*args))

    return run


def collected(gen_fn):
    """A wrapper that hands the caller a list of what a generator yields."""

    @functools.wraps(gen_fn)
    def collect(*args):
        return list(gen_fn(*args))

    return collect


def logged(fn):
    """A pass-through synchronous wrapper, put over an async function by mistake."""

    @functools.wraps(fn)
    def log(*args):
        return fn(*args)

    return log


def test_a_sync_facade_over_an_async_function_is_called_as_it_is_written(spans):
    @faultprint.observe(model="m")
    @sync_facade
    async def summarise(text: str) -> str:
        await asyncio.sleep(0)
        return "summary of " + text

    assert summarise("doc") == "summary of doc"
    assert not inspect.iscoroutinefunction(summarise)
    span = spans.one()
    # named after the function the application wrote, behind the wrapper
    assert span.attributes[A.FP_CALL_SITE].endswith("summarise")
    assert span.status.status_code == StatusCode.UNSET


def test_a_wrapper_collecting_a_generator_returns_its_list(spans):
    @faultprint.observe(model="m", json=True)
    @collected
    def words(n: int):
        yield from ('"a"', '"b"', '"c"')[:n]

    assert words(2) == ['"a"', '"b"']
    assert not inspect.isgeneratorfunction(words)
    span = spans.one()
    assert A.FP_FAILURE_CATEGORY not in span.attributes
    assert A.FP_STREAM_CHUNKS not in span.attributes


def test_a_context_manager_function_stays_a_context_manager(spans):
    @faultprint.observe(model="m")
    @contextlib.contextmanager
    def session():
        yield "connected"

    with session() as value:
        assert value == "connected"
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


def test_a_sync_function_returning_a_coroutine_returns_it_untouched(spans, caplog, monkeypatch):
    monkeypatch.setattr(faultprint._output, "_WARNED_DEFERRED", set())  # warned once per process

    class Answer(pydantic.BaseModel):
        text: str

    @faultprint.observe(model="m", expect=Answer, raise_on_invalid=True)
    @logged
    async def ask(question: str) -> str:
        return '{"text": "yes"}'

    async def main():
        pending = ask("q")
        assert inspect.iscoroutine(pending)
        assert pending.cr_code is inspect.unwrap(ask).__code__  # the very coroutine
        return await pending, await ask("q")

    with caplog.at_level("WARNING", logger="faultprint"):
        assert asyncio.run(main()) == ('{"text": "yes"}', '{"text": "yes"}')
    # The coroutine is not an output: no check ran on it, nothing was raised,
    # and the application is told once why its calls end before they run.
    for span in spans.all():
        assert A.FP_FAILURE_CATEGORY not in span.attributes
    warnings = [r.getMessage() for r in caplog.records if "returned a coroutine" in r.getMessage()]
    assert len(warnings) == 1


def test_a_sync_function_returning_a_generator_returns_it_untouched(spans):
    source = iter(["x", "y"])

    # a check that would consume what it is given, were the generator checked
    @faultprint.observe(model="m", expect=lambda out: sorted(out) == ["x", "y"])
    def lines():
        return (line for line in source)

    gen = lines()
    assert inspect.isgenerator(gen)
    assert list(gen) == ["x", "y"]  # the application's own generator, unobserved
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


def test_a_partial_of_a_generator_function_is_a_stream(spans):
    def count(start: int, n: int):
        yield from range(start, start + n)

    from_ten = faultprint.observe(model="m")(functools.partial(count, 10))
    assert inspect.isgeneratorfunction(from_ten)
    assert list(from_ten(3)) == [10, 11, 12]
    span = spans.one()
    assert span.attributes[A.FP_STREAM_CHUNKS] == 3
    # the function's name, not the partial's repr with its memory address
    assert span.attributes[A.FP_CALL_SITE] == (
        f"{__name__}.test_a_partial_of_a_generator_function_is_a_stream.<locals>.count"
    )


@faultprint.observe(model="inner")
def inner() -> str:
    return "inner"


@faultprint.observe(model="outer", operation="invoke_agent")
def outer() -> str:
    return inner() + "+outer"


def test_nested_calls_and_application_spans_as_parents(spans):
    tracer = spans_tracer()
    with tracer.start_as_current_span("request") as app_span:
        assert outer() == "inner+outer"
    # the application's own span is a parent but not exported: not a model call
    inner_span, outer_span = spans.all()
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert outer_span.parent.span_id == app_span.get_span_context().span_id
    assert outer_span.context.trace_id == app_span.get_span_context().trace_id
    assert outer_span.name == "invoke_agent outer"


def spans_tracer():
    from faultprint._config import STATE

    return STATE.provider.get_tracer("app")


def assert_cancelled_without_verdict(span, by: str) -> None:
    """The caller abandoned the call: said so, and no failure of the model."""
    assert span.end_time is not None
    assert span.attributes[A.FP_CANCELLED] == by
    assert span.status.status_code == StatusCode.UNSET
    assert A.ERROR_TYPE not in span.attributes
    assert A.FP_FAILURE_CATEGORY not in span.attributes
    assert [e.name for e in span.events] == []  # no exception event to read as an error


def cancelled_while_running(fn) -> None:
    """Run ``fn()`` as a task and cancel it once it is under way."""

    async def main():
        task = asyncio.create_task(fn())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancelled_call_ends_its_span_cancelled_not_failed(spans):
    @faultprint.observe(model="m")
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    cancelled_while_running(slow)
    assert_cancelled_without_verdict(spans.one(), "asyncio.exceptions.CancelledError")


def test_a_caller_timeout_around_the_call_is_a_cancellation(spans):
    @faultprint.observe(model="m")
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    async def main():
        with pytest.raises(TimeoutError):  # the caller's, raised outside the call
            await asyncio.wait_for(slow(), 0.01)

    asyncio.run(main())
    assert_cancelled_without_verdict(spans.one(), "asyncio.exceptions.CancelledError")


def test_a_failure_known_before_the_cancellation_stands(spans):
    @faultprint.observe(model="m")
    async def slow() -> str:
        faultprint.current_call().set_output("I'm sorry, but I can't help with that.")
        await asyncio.sleep(10)
        return "never"

    cancelled_while_running(slow)
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "refusal"
    assert span.attributes[A.FP_CANCELLED] == "asyncio.exceptions.CancelledError"


def test_keyboard_interrupt_ends_span_cancelled_not_failed(spans):
    @faultprint.observe(model="m")
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert_cancelled_without_verdict(spans.one(), "KeyboardInterrupt")


def test_a_with_block_interrupted_is_cancelled_not_failed(spans):
    with pytest.raises(KeyboardInterrupt), faultprint.call(model="m"):
        raise KeyboardInterrupt
    assert_cancelled_without_verdict(spans.one(), "KeyboardInterrupt")


def test_context_manager_with_set_output_and_usage(spans):
    with faultprint.call(model="gpt-x", provider="openai", version="v2", input="hello") as c:
        c.set_output(
            "partial answer", finish_reason="length", usage={"input_tokens": 5, "output_tokens": 7}
        )
    span = spans.one()
    assert span.name == "chat gpt-x"
    assert (
        span.attributes[A.FP_CALL_SITE]
        == f"{__name__}.test_context_manager_with_set_output_and_usage"
    )
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 5
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert span.attributes[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert span.status.status_code == StatusCode.ERROR


def test_context_manager_exception(spans):
    with pytest.raises(TimeoutError), faultprint.call(model="m"):
        raise TimeoutError("read timed out")
    span = spans.one()
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "timeout"


def test_current_call_and_record_failure(spans):
    @faultprint.observe(model="m")
    def tool_user() -> str:
        faultprint.current_call().set_attribute("app.step", "plan")
        assert faultprint.record_failure("tool_error", {"tool": "search", "reason": "unknown_tool"})
        return "done"

    assert tool_user() == "done"
    assert faultprint.record_failure("refusal") is False  # outside a call: ignored
    assert faultprint.current_call().record_failure("refusal") is False
    span = spans.one()
    assert span.attributes["app.step"] == "plan"
    assert span.attributes[A.FP_FAILURE_CATEGORY] == "tool_error"
    assert '"tool": "search"' in span.attributes[A.FP_FAILURE_DETAIL]


def test_record_failure_rejects_unknown_category(spans):
    @faultprint.observe(model="m")
    def f() -> str:
        return str(faultprint.record_failure("not_a_category"))

    assert f() == "False"
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


def test_unconfigured_sdk_is_a_no_op():
    faultprint.shutdown()

    @faultprint.observe(model="m")
    def f(x: int) -> int:
        return x * 2

    assert f(21) == 42
    with faultprint.call(model="m") as c:
        c.set_output("x")
    assert trace.get_current_span().get_span_context().is_valid is False


def test_stream_parent_is_the_span_current_when_the_generator_is_called(spans):
    tracer = spans_tracer()
    with tracer.start_as_current_span("request") as app_span:
        gen = stream_words(2)
        agen = astream(2)
    # consumed after the application's span was left
    assert list(gen) == ["w0 ", "w1 "]

    async def consume():
        return [x async for x in agen]

    assert asyncio.run(consume()) == ["a0", "a1"]
    for span in spans.all():
        assert span.parent is not None
        assert span.parent.span_id == app_span.get_span_context().span_id


def test_time_to_first_chunk_runs_from_the_first_request_to_the_first_chunk(spans, monkeypatch):
    import faultprint._observe as observe_module

    clock = [100.0]
    monkeypatch.setattr(observe_module, "_perf", lambda: clock[0])

    @faultprint.observe(model="m")
    def slow_stream():
        clock[0] += 0.25  # the model takes 250 ms to the first chunk
        yield "first"
        clock[0] += 5.0
        yield "second"

    gen = slow_stream()
    clock[0] += 60.0  # the generator waits before anyone iterates it: not counted
    assert list(gen) == ["first", "second"]
    span = spans.one()
    assert span.attributes[A.FP_STREAM_TTFC_MS] == 250.0
    assert span.attributes[A.FP_STREAM_CHUNKS] == 2


def test_keyboard_interrupt_inside_a_generator_ends_its_span(spans):
    @faultprint.observe(model="m")
    def interrupted():
        yield "one"
        raise KeyboardInterrupt

    gen = interrupted()
    assert next(gen) == "one"
    with pytest.raises(KeyboardInterrupt):
        next(gen)
    span = spans.one()
    assert_cancelled_without_verdict(span, "KeyboardInterrupt")
    assert span.attributes[A.FP_STREAM_CHUNKS] == 1


def test_cancelled_async_generator_ends_its_span_with_what_it_streamed(spans):
    @faultprint.observe(model="m")
    async def endless():
        i = 0
        while True:
            yield i
            i += 1
            if i == 3:
                await asyncio.sleep(10)  # cancelled here

    async def main():
        seen = []

        async def consume():
            async for x in endless():
                seen.append(x)

        task = asyncio.create_task(consume())
        while len(seen) < 3:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    span = spans.one()
    assert_cancelled_without_verdict(span, "asyncio.exceptions.CancelledError")
    assert span.attributes[A.FP_STREAM_CHUNKS] == 3
    assert A.FP_STREAM_TTFC_MS in span.attributes


def test_a_stream_closed_or_abandoned_leaves_the_consumers_context_as_it_was(spans):
    """A generator body holding an application span across a yield: its cleanup
    on close() or on being abandoned runs in the stream's context, so the
    consumer's current span is its own again, not faultprint's ended span."""
    tracer = spans_tracer()

    @faultprint.observe(model="m")
    def events():
        with tracer.start_as_current_span("inside the stream"):
            yield "a"
            yield "b"

    with tracer.start_as_current_span("request") as request:
        gen = events()
        next(gen)
        gen.close()
        assert trace.get_current_span() is request
        assert faultprint.current_call().record_failure("refusal") is False
        gen = events()
        next(gen)
        del gen
        gc.collect()
        assert trace.get_current_span() is request
    closed, abandoned = spans.all()  # faultprint exports its own spans only
    assert closed.attributes["faultprint.stream.closed_early"] is True
    assert abandoned.attributes["faultprint.stream.closed_early"] is True


def test_an_async_stream_closed_early_leaves_the_consumers_context_as_it_was(spans):
    tracer = spans_tracer()

    @faultprint.observe(model="m")
    async def events():
        with tracer.start_as_current_span("inside the stream"):
            yield "a"
            yield "b"

    async def consume() -> None:
        with tracer.start_as_current_span("request") as request:
            agen = events()
            await agen.__anext__()
            await agen.aclose()
            assert trace.get_current_span() is request

    asyncio.run(consume())
    assert spans.one().attributes["faultprint.stream.closed_early"] is True


def test_a_call_block_starts_when_entered_not_when_built(spans):
    """A block built ahead and left unentered records nothing and leaves nothing
    current; the calls made after it are recorded on their own."""
    ahead = faultprint.call(model="cached", input="q1")
    assert faultprint.current_call().record_failure("refusal") is False
    assert not trace.get_current_span().get_span_context().is_valid

    @faultprint.observe(model="m")
    def later() -> str:
        return "answer"

    later()
    del ahead
    span = spans.one()
    assert span.name == "chat m" and span.parent is None


def test_one_call_block_entered_again_and_by_concurrent_tasks(spans):
    block = faultprint.call(model="m", input="same question")
    for i in range(2):
        with block as c:
            c.set_output(f"answer {i}")

    async def task(i: int) -> None:
        async with block as c:
            await asyncio.sleep(0.01 * (3 - i))  # the first to enter leaves last
            c.record_failure("tool_error", {"task": i})

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(3)))

    asyncio.run(main())
    found = spans.all()
    assert len(found) == 5
    assert all(s.parent is None for s in found)
    details = sorted(
        s.attributes[A.FP_FAILURE_DETAIL] for s in found if A.FP_FAILURE_DETAIL in s.attributes
    )
    assert details == ['{"task": 0}', '{"task": 1}', '{"task": 2}']
    assert faultprint.current_call().record_failure("refusal") is False


def test_record_failure_with_a_category_that_is_not_text_is_ignored(spans):
    @faultprint.observe(model="m")
    def f() -> str:
        assert faultprint.current_call().record_failure(["tool_error"]) is False  # type: ignore[arg-type]
        assert faultprint.record_failure({"tool_error": 1}) is False  # type: ignore[arg-type]
        return "ok"

    assert f() == "ok"
    assert A.FP_FAILURE_CATEGORY not in spans.one().attributes


def test_an_interrupt_while_an_output_check_runs_ends_the_span_cancelled(spans):
    def check(value: str) -> bool:
        raise KeyboardInterrupt

    @faultprint.observe(model="m", expect=check)
    def f() -> str:
        return "answer"

    @faultprint.observe(model="m", expect=check)
    def stream():
        yield "answer"

    with pytest.raises(KeyboardInterrupt):
        f()
    with pytest.raises(KeyboardInterrupt):
        list(stream())
    found = spans.all()
    assert len(found) == 2
    for span in found:
        assert_cancelled_without_verdict(span, "KeyboardInterrupt")


def test_the_output_declared_last_is_the_calls(spans):
    """A refusal, then the answer a retry got: the call answered. A failure the
    application recorded stays whatever output it declares after."""
    with faultprint.call(model="m") as c:
        c.set_output("I'm sorry, but I can't help with that.")
        c.set_output("The total is 42.")
    with faultprint.call(model="m") as c:
        c.set_output("The total is 42.")
        c.set_output("The total is", finish_reason="length")
    with faultprint.call(model="m") as c:
        c.record_failure("tool_error", {"tool": "lookup"})
        c.set_output("The total is 42.")
    answered, cut, recorded = spans.all()
    assert A.FP_FAILURE_CATEGORY not in answered.attributes
    assert answered.status.status_code == StatusCode.UNSET
    assert cut.attributes[A.FP_FAILURE_CATEGORY] == "truncation"
    assert recorded.attributes[A.FP_FAILURE_CATEGORY] == "tool_error"


def test_a_methods_receiver_is_not_part_of_its_input(spans):
    """The same question to two assistants holding different (and large) state:
    one input. Hashing self would read all it holds on every call."""
    import dataclasses

    @dataclasses.dataclass
    class Library:
        documents: list[str]

        @faultprint.observe(model="m")
        def answer(self, question: str) -> str:
            return "answer"

        @faultprint.observe(model="m")
        @classmethod
        def default(cls, question: str) -> str:
            return "answer"

    @faultprint.observe(model="m")
    def answer(question: str) -> str:
        return "answer"

    Library(["a"] * 10).answer("q")
    Library(["b"] * 100_000).answer("q")
    Library.default("q")
    answer("q")
    answer("another q")
    hashes = [s.attributes[A.FP_INPUT_HASH] for s in spans.all()]
    assert len(set(hashes[:4])) == 1
    assert hashes[4] != hashes[0]
