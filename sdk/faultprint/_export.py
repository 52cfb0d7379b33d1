"""Span processors: a bounded background export queue and a swappable slot.

The export queue follows the shape of OpenTelemetry's ``BatchSpanProcessor``
(``on_start`` / ``on_end`` / ``force_flush`` / ``shutdown``) but is written for
faultprint's reliability rules: ``on_end`` never blocks and never raises, a
full queue drops the span and counts it, successes that lost the sampling
draw are skipped (see ``drop_sampled_out``), and a forked child starts with an
empty queue, a fresh exporter and counters of its own instead of sharing the
parent's sockets. Unlike the ``BatchSpanProcessor``, it exports every span it
is given, whatever the span's sampled flag: on faultprint's own provider
every call is recorded, and a call under a trace that is not sampled keeps
that flag for what it propagates (see ``faultprint._span.RecordEveryCall``).

The export thread also finishes spans handed to it with ``defer``: a client
integration ends its span there, after reading the provider's response, with
the end time taken when the call returned. The calling thread pays only for
starting the span.

``flush`` may run inside a signal handler (SIGTERM), on a main thread that the
signal interrupted anywhere, even inside this queue's own lock. So neither
``flush`` nor the export thread takes that lock: the thread is woken, and
handed the flush's completion event, through a ``queue.SimpleQueue`` (one C
call, never interrupted half-way), and it keeps its own counters.
"""

from __future__ import annotations

import collections
import logging
import os
import queue as queue_module
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from faultprint import attributes as A
from faultprint._current import CURRENT_CALL
from faultprint._stats import empty_stats

_log = logging.getLogger("faultprint")

#: name of the export thread
EXPORT_THREAD = "faultprint-export"

#: bound on remembered spans started inside faultprint calls (see ProcessorSlot)
_MAX_INSIDE_CALLS = 65536

#: bound on remembered sampled-out span ids; only reached when spans are
#: created on a provider this queue is not attached to
_MAX_SAMPLED_OUT = 65536


def wait_seconds(timeout: float | None) -> float | None:
    """A flush's ``timeout`` as ``threading``'s waits take it.

    None (wait until done) for None and for a wait longer than those can
    (``float("inf")``: their own OverflowError would end the flush at once);
    0 (do not wait) for a negative one, as a deadline already passed gives
    (``deadline - time.monotonic()``), and for NaN, which no wait can last.
    """
    if timeout is None or timeout >= threading.TIMEOUT_MAX:
        return None
    if timeout > 0:  # False for NaN
        return float(timeout)
    return 0.0


class ExportQueue(SpanProcessor):
    """Bounded queue of ended spans, exported in batches by one daemon thread."""

    #: on_start and _on_ending do nothing (faultprint's span starter skips them)
    faultprint_quiet_processor = True

    def __init__(
        self,
        exporter_factory: Callable[[], SpanExporter],
        *,
        max_queue_size: int = 4096,
        max_export_batch_size: int = 512,
        schedule_delay: float = 0.5,
    ) -> None:
        self._exporter_factory = exporter_factory
        self._max_queue_size = max(1, int(max_queue_size))
        self._batch_size = max(1, int(max_export_batch_size))
        self._delay = max(0.001, float(schedule_delay))
        self._closed = False
        #: exports begun (see flush)
        self._export_seq = 0
        self._reset_process_state()
        self._reset_runtime()
        ref = weakref.ref(self)

        def _after_fork() -> None:
            queue = ref()
            if queue is not None:
                queue._after_fork_in_child()

        # The parent exports what it queued; the child must not export copies
        # of those spans, nor reuse the parent's HTTP connections.
        os.register_at_fork(after_in_child=_after_fork)

    def _reset_runtime(self) -> None:
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        #: (function, arguments) finishing a span, run by the export thread
        self._pending: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._accepting = True
        self._lock = threading.Lock()
        #: wakes the export thread; a flush puts its completion event here
        self._wake: queue_module.SimpleQueue[threading.Event | None] = queue_module.SimpleQueue()
        self._wake_sent = False
        self._thread: threading.Thread | None = None
        self._worker_ident: int | None = None
        self._stopping = False

    def _reset_process_state(self) -> None:
        """The exporter, the export's state and the counters, as in a new process."""
        self._exporter: SpanExporter | None = None  # built lazily by the export thread
        self._exporter_closed = False
        self._failing = False  # the last export failed
        #: spans of the batch being exported (0: none), stats()["exporting"]
        self._in_flight = 0
        #: the export a flush stopped waiting for (see flush)
        self._abandoned_export = -1
        self._sampled_out: set[int] = set()
        #: counted by application threads, under ``_lock``
        self._counters: dict[str, int] = collections.Counter()
        #: counted by the export thread alone, without a lock
        self._worker_counters: dict[str, int] = collections.Counter(
            {"exported": 0, "export_failed": 0, "export_batches": 0, "sampled_out": 0}
        )

    def _after_fork_in_child(self) -> None:
        # Spans the parent had left to finish are the parent's to finish, and
        # what the parent counted is the parent's: the child counts afresh
        # with an exporter of its own, not the parent's connections.
        # (Its exit flush: faultprint._config._arrange_multiprocessing_exit.)
        self._reset_runtime()
        self._reset_process_state()

    # --- SpanProcessor --------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue an ended span; drop (and count) it when the queue is full."""
        try:
            if self._sampled_out:
                ctx = span.context
                if ctx is not None and ctx.span_id in self._sampled_out:
                    self._sampled_out.discard(ctx.span_id)
                    self._count("sampled_out")
                    return
            if self._closed:
                self._count("dropped_after_shutdown")
                return
            queue = self._queue
            if len(queue) >= self._max_queue_size:
                self._count("dropped_queue_full")
                return
            queue.append(span)
            if self._thread is None:
                self._start_worker()
            if len(queue) >= self._batch_size:
                self._wake_worker()
        except Exception:  # never let export trouble reach the application
            _log.debug("faultprint: span not queued", exc_info=True)

    def defer(self, finish: Callable[..., None], *args: Any) -> bool:
        """Have the export thread run ``finish(*args)``, which ends a span.

        False when the queue cannot take it (shut down, or as many spans
        waiting as the queue holds): the caller then finishes the span
        itself, so nothing is lost. ``flush`` and ``shutdown`` run every
        accepted ``finish`` before they export.
        """
        pending = self._pending
        with self._lock:
            if not self._accepting or len(pending) + len(self._queue) >= self._max_queue_size:
                return False
            pending.append((finish, args))
            if self._thread is None:
                self._start_worker_locked()
        if len(pending) >= self._batch_size:
            self._wake_worker()
        return True

    def _wake_worker(self) -> None:
        # Once per wake-up, not once per span while a batch waits.
        if not self._wake_sent and threading.get_ident() != self._worker_ident:
            self._wake_sent = True
            self._wake.put(None)

    def drop_sampled_out(self, span_id: int) -> None:
        """Mark a span (by id) so that it is not exported when it ends."""
        if len(self._sampled_out) >= _MAX_SAMPLED_OUT:
            self._sampled_out.clear()
        self._sampled_out.add(span_id)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued; True when done within the timeout."""
        return self.flush(timeout_millis / 1000.0)

    def flush(self, timeout: float | None = 10.0, *, before_exit: bool = False) -> bool:
        """Export everything queued so far; True when done within ``timeout``.

        Safe in a signal handler: takes no lock once the export thread runs.
        BEFORE_EXIT (the SIGTERM handler's flush): when it gives up on an
        export under way, ``shutdown`` does not wait for that export again.
        An application's own flush, however short, leaves shutdown its wait.
        ``timeout`` None or infinite waits until done; negative or NaN, not
        at all (see ``wait_seconds``).
        """
        timeout = wait_seconds(timeout)
        if self._closed:
            # Nothing is queued once shut down, and the export thread is gone:
            # a flush reaching a stopped queue (faultprint.shutdown() leaves
            # it on the provider to count late spans) must not wait for it.
            return True
        if self._thread is None:
            if not self._queue and not self._pending:
                return True
            # Only before the first span started the thread.
            if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
                return False
            try:
                if self._thread is None:
                    self._start_worker_locked()
            finally:
                self._lock.release()
        done = threading.Event()
        self._wake.put(done)
        if done.wait(timeout):
            return True
        if before_exit and self._in_flight:
            # An export outlasted the wait: a collector that accepts and never
            # answers holds it until the exporter's timeout. shutdown() at
            # exit does not wait for that export a second time.
            self._abandoned_export = self._export_seq
        return False

    def shutdown(self, timeout: float | None = 5.0) -> bool:  # type: ignore[override]
        """Flush within ``timeout`` (as ``flush`` takes it), then stop the worker and the exporter.

        True when the flush ended within ``timeout`` (every span exported,
        or given up on because the collector is unreachable).
        """
        if self._closed:
            return True
        with self._lock:
            self._accepting = False  # from now on callers finish their own spans
        # A flush already gave up waiting for the export under way (the
        # SIGTERM handler's, then this one at exit): waiting again would only
        # double the delay.
        abandoned = bool(self._in_flight) and self._abandoned_export == self._export_seq
        if abandoned or self._failing or (self._in_flight and EXPORTER_LOGS.reason is not None):
            # The collector is unreachable (the last export failed, the one
            # under way is retrying, or a flush gave up on it): end the
            # exporter's retries now instead of holding up the application's
            # exit for ``timeout``.
            self._close_exporter()
        flushed = False if abandoned else self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._wake.put(None)
        self._close_exporter()
        return flushed

    def _close_exporter(self) -> None:
        exporter = self._exporter
        if exporter is not None and not self._exporter_closed:
            self._exporter_closed = True
            try:
                exporter.shutdown()
            except Exception:
                _log.debug("faultprint: exporter shutdown failed", exc_info=True)

    # --- statistics -----------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        if threading.get_ident() == self._worker_ident:
            self._worker_counters[key] += n
            return
        with self._lock:
            self._counters[key] += n

    def count_not_recorded(self) -> None:
        """Count a call its provider's sampler did not record (``not_recorded``)."""
        self._count("not_recorded")

    def stats(self) -> dict[str, int]:
        """The counters of ``faultprint.stats()`` (see ``faultprint._stats``)."""
        with self._lock:
            out = empty_stats()
            out.update(self._counters)
        for key, n in dict(self._worker_counters).items():
            out[key] = out.get(key, 0) + n
        out["queued"] = len(self._queue)
        out["exporting"] = self._in_flight
        out["finishing"] = len(self._pending)
        out["dropped"] = out["dropped_queue_full"] + out["dropped_after_shutdown"]
        return out

    # --- worker ---------------------------------------------------------------
    def _start_worker(self) -> None:
        # Bounded: a signal handler ending spans may run on the thread that
        # holds the lock. The next span or flush starts the worker then.
        if not self._lock.acquire(timeout=1.0):
            return
        try:
            if self._thread is None:
                self._start_worker_locked()
        finally:
            self._lock.release()

    def _start_worker_locked(self) -> None:
        thread = threading.Thread(target=self._run, name=EXPORT_THREAD, daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        wake = self._wake
        while True:
            waiters: list[threading.Event] = []
            try:
                item = wake.get(timeout=self._delay)
                while True:
                    if item is not None:
                        waiters.append(item)
                    item = wake.get_nowait()
            except queue_module.Empty:
                pass
            self._wake_sent = False
            self._finish_pending()
            self._drain()
            for waiter in waiters:
                waiter.set()
            if self._stopping:
                return

    def _finish_pending(self) -> None:
        pending = self._pending
        while pending:
            try:
                finish, args = pending.popleft()
            except IndexError:
                return
            try:
                finish(*args)
            except Exception:
                _log.debug("faultprint: finishing a span failed", exc_info=True)

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[ReadableSpan] = []
            try:
                while queue and len(batch) < self._batch_size:
                    batch.append(queue.popleft())
            except IndexError:
                pass
            if batch:
                self._export(batch)

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        # Counted as "exporting" from here until counted as exported or failed.
        self._in_flight = len(batch)
        try:
            exporter = self._exporter
            if exporter is None:
                exporter = self._exporter = self._exporter_factory()
            EXPORTER_LOGS.reason = None
            self._export_seq += 1
            ok = exporter.export(batch) is SpanExportResult.SUCCESS
        except Exception as exc:
            _log.debug("faultprint: export raised", exc_info=True)
            EXPORTER_LOGS.reason = f"{type(exc).__name__}: {exc}"
            ok = False
        counters = self._worker_counters
        counters["export_batches"] += 1
        counters["exported" if ok else "export_failed"] += len(batch)
        self._in_flight = 0
        if ok == self._failing:  # exports started failing, or work again
            self._failing = not ok
            if ok:
                _log.warning("faultprint: spans are exported again")
            elif not self._exporter_closed:
                _log.warning(
                    "faultprint: spans cannot be exported (%s); until they can, they are "
                    "dropped and counted in faultprint.stats()['export_failed']",
                    EXPORTER_LOGS.reason or "the exporter reported a failure",
                )


class ExporterLogs(logging.Filter):
    """Holds back an exporter's log records written on faultprint's export thread.

    The OTLP exporter logs a warning for every retry and an error for every
    batch it gives up on, into the application's logs. faultprint says once
    that exports fail, with the first message of the failing export as the
    reason, and counts the lost spans in ``stats()``.
    """

    def __init__(self) -> None:
        super().__init__()
        #: first message held back during the current export (None: none yet)
        self.reason: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """False (the record is dropped) for records of the export thread."""
        if record.threadName != EXPORT_THREAD:
            return True
        if self.reason is None:
            try:
                self.reason = record.getMessage()
            except Exception:
                self.reason = str(record.msg)
        return False

    def install(self, *logger_names: str) -> None:
        """Add this filter to the named loggers (once each)."""
        for name in logger_names:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


EXPORTER_LOGS = ExporterLogs()


def is_model_call_span(span: ReadableSpan) -> bool:
    """True for spans the collector wants: faultprint's own or GenAI-attributed."""
    if getattr(type(span), "faultprint_model_call", False) is True:
        return True  # faultprint's own span class (faultprint._span.ModelCallSpan)
    scope = span.instrumentation_scope
    if scope is not None and scope.name == "faultprint":
        return True
    attrs = span.attributes
    if not attrs:
        return False
    return (
        A.GEN_AI_OPERATION_NAME in attrs
        or A.GEN_AI_PROVIDER_NAME in attrs
        or "gen_ai.system" in attrs
        or "llm.model_name" in attrs
    )


class ProcessorSlot(SpanProcessor):
    """Stable processor added once to an application's TracerProvider.

    An SDK TracerProvider has no public way to remove a processor, so
    faultprint adds this slot once and re-configuration swaps its target.
    Only model-call spans are passed on: the application's other spans are
    not faultprint's business.
    """

    #: on_start and _on_ending do nothing for faultprint's own spans (its span
    #: starter skips them)
    faultprint_quiet_processor = True

    def __init__(self) -> None:
        self.target: ExportQueue | None = None
        #: ids of spans another instrumentation started right inside a
        #: faultprint call (see on_start), forgotten when they end
        self._inside_calls: set[int] = set()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Note a span another instrumentation starts right inside a faultprint call.

        Such a span records an API call of the model call faultprint's span
        records: the provider libraries have begun to trace their own calls
        (the Anthropic library does, on the global provider), and other
        instrumentations may wrap the same client. On a provider shared with
        the application these spans reach this slot too; exported, they would
        count one model call twice. faultprint's own integrations follow the
        same rule: inside an ``@observe`` call they enrich it, they do not
        record a second call.
        """
        call = CURRENT_CALL.get()
        if call is None or self.target is None:
            return
        try:
            parent = span.parent
            if (
                call.ended
                or parent is None
                or parent.span_id != call.span.get_span_context().span_id
            ):
                return
            scope = span.instrumentation_scope
            if scope is not None and scope.name == "faultprint":
                return
            inside = self._inside_calls
            if len(inside) >= _MAX_INSIDE_CALLS:
                inside.clear()  # spans that never ended; a duplicate may then pass
            inside.add(span.get_span_context().span_id)
        except Exception:
            _log.debug("faultprint: slot on_start failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass model-call spans on to the current export queue."""
        target = self.target
        if target is not None:
            try:
                inside = self._inside_calls
                if inside:
                    context = span.context
                    if context is not None and context.span_id in inside:
                        inside.discard(context.span_id)
                        if is_model_call_span(span):
                            target._count("duplicates_dropped")
                        return
                if is_model_call_span(span):
                    target.on_end(span)
            except Exception:
                _log.debug("faultprint: slot on_end failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the current export queue."""
        target = self.target
        return True if target is None else target.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Called when the application shuts its provider down."""
        target = self.target
        if target is not None:
            target.shutdown()


class DiscardingExporter(SpanExporter):
    """Exporter that accepts and forgets spans (benchmarks, disabled export)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Accept the batch."""
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def slot_for(provider: Any) -> ProcessorSlot:
    """The faultprint slot on ``provider``, added on first use."""
    slot = getattr(provider, "_faultprint_slot", None)
    if isinstance(slot, ProcessorSlot):
        return slot
    slot = ProcessorSlot()
    provider.add_span_processor(slot)
    provider._faultprint_slot = slot
    return slot
