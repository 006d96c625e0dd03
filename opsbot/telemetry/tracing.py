"""Traces, opt-in (``opsbot[otel]``): OpenTelemetry over Flask, SQLAlchemy, HTTP and botocore.

The HTTP clients traced are requests (Jira) and urllib (slack_sdk).

Configured by the standard ``OTEL_*`` variables and started per process (per
gunicorn worker after fork, in ``opsbot worker`` at start). Tracing is asked
for when ``OTEL_TRACES_EXPORTER`` (not ``none``) or an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set and ``OTEL_SDK_DISABLED`` is not true. Spans go by OTLP over HTTP
(protobuf) to a collector (the ADOT collector on ECS, which sends them on to
X-Ray). Trace ids are X-Ray-compatible (the AWS id generator: the first 32
bits are the start time) and, unless ``OTEL_PROPAGATORS`` says otherwise,
context travels both as W3C ``traceparent`` and as ``X-Amzn-Trace-Id`` (so a
request's trace continues the ALB's).

An outbox row stores the W3C traceparent of the span that queued it (the
inbound delivery); its send span is a new trace linked to that one, and the
Jira or Slack HTTP call is a child of the send span.

Without the extra installed opsbot runs as before, and says once at start
that tracing is unavailable when the variables ask for it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)

SERVICE_NAME = "opsbot"
# Probes and scrapes are not worth a trace each (OTEL_PYTHON_FLASK_EXCLUDED_URLS overrides).
EXCLUDED_URLS = "healthz,readyz,metrics"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# The provider once started, and the OpenTelemetry modules (loaded only when asked for: they
# cost every process start almost a second, and most processes never trace).
_state: dict[str, Any] = {"provider": None, "otel": None}


def _otel() -> Any:
    """Return the OpenTelemetry names opsbot uses; raise ImportError without the extra."""
    if _state["otel"] is None:
        from opentelemetry import context, propagate, trace
        from opentelemetry import metrics as meters
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.urllib import URLLibInstrumentor
        from opentelemetry.propagators.aws import AwsXRayPropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _state["otel"] = SimpleNamespace(
            context=context,
            propagate=propagate,
            trace=trace,
            meters=meters,
            W3CBaggagePropagator=W3CBaggagePropagator,
            BotocoreInstrumentor=BotocoreInstrumentor,
            FlaskInstrumentor=FlaskInstrumentor,
            RequestsInstrumentor=RequestsInstrumentor,
            EngineTracer=EngineTracer,
            URLLibInstrumentor=URLLibInstrumentor,
            AwsXRayPropagator=AwsXRayPropagator,
            CompositePropagator=CompositePropagator,
            AwsXRayIdGenerator=AwsXRayIdGenerator,
            Resource=Resource,
            TracerProvider=TracerProvider,
            BatchSpanProcessor=BatchSpanProcessor,
            SimpleSpanProcessor=SimpleSpanProcessor,
            TraceContextTextMapPropagator=TraceContextTextMapPropagator,
        )
    return _state["otel"]


def available() -> bool:
    """Return whether the otel extra is installed."""
    try:
        _otel()
    except ImportError:
        return False
    return True


def requested(env: Mapping[str, str] = os.environ) -> bool:
    """Return whether the ``OTEL_*`` variables ask for traces."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def announce() -> None:
    """Say once (in the process that starts the others) whether traces will be sent."""
    if not requested():
        return
    if not available():
        log.warning(
            "tracing unavailable: OTEL_* variables ask for traces but the otel extra is not "
            "installed (pip install 'opsbot[otel]'); running without traces"
        )
    else:
        log.info("tracing on: spans go by OTLP/HTTP with X-Ray-compatible trace ids")


def started() -> bool:
    """Return whether tracing runs in this process."""
    return _state["provider"] is not None


def start(exporter: Any = None) -> bool:
    """Start tracing when asked for (or given a SpanExporter, for tests); return whether on.

    Call once per process, after any fork: gunicorn's post_fork, ``opsbot worker``.
    """
    if started():
        return True
    if (exporter is None and not requested()) or not available():
        return False
    otel = _otel()
    if exporter is None:
        processor = otel.BatchSpanProcessor(_otlp_exporter())
    else:
        processor = otel.SimpleSpanProcessor(exporter)
    named = bool(os.environ.get("OTEL_SERVICE_NAME"))
    resource = otel.Resource.create({} if named else {"service.name": SERVICE_NAME})
    provider = otel.TracerProvider(resource=resource, id_generator=otel.AwsXRayIdGenerator())
    provider.add_span_processor(processor)
    if isinstance(otel.trace.get_tracer_provider(), otel.trace.ProxyTracerProvider):
        otel.trace.set_tracer_provider(provider)  # once per process; opsbot passes its own
    if not os.environ.get("OTEL_PROPAGATORS"):
        otel.propagate.set_global_textmap(
            otel.CompositePropagator(
                [
                    otel.TraceContextTextMapPropagator(),
                    otel.W3CBaggagePropagator(),
                    otel.AwsXRayPropagator(),
                ]
            )
        )
    for instrumentor in _client_instrumentors(otel):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    _state["provider"] = provider
    return True


def stop() -> None:
    """Flush and stop tracing in this process (at exit, and between tests)."""
    provider = _state["provider"]
    if provider is None:
        return
    otel = _otel()
    for instrumentor in _client_instrumentors(otel):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    otel.EngineTracer.remove_all_event_listeners()
    provider.shutdown()
    _state["provider"] = None


def instrument_app(app: Any) -> None:
    """Trace the Flask app's requests (a no-op unless tracing runs)."""
    if started():
        excluded = os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS", EXCLUDED_URLS)
        _otel().FlaskInstrumentor.instrument_app(
            app, tracer_provider=_state["provider"], excluded_urls=excluded
        )


def instrument_engine(engine: Any) -> None:
    """Trace the engine's statements (a no-op unless tracing runs)."""
    if not started():
        return
    # The engine's own tracer, not SQLAlchemyInstrumentor: that one declares sqlalchemy < 2.1
    # and wraps sqlalchemy.ext.asyncio (greenlet); this hooks the engine's cursor events,
    # which 2.1 keeps (tests/telemetry checks the statements are traced).
    otel = _otel()
    tracer = otel.trace.get_tracer(__name__, tracer_provider=_state["provider"])
    usage = otel.meters.get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    otel.EngineTracer(tracer, engine, usage)


def current_trace_parent() -> str | None:
    """Return the W3C traceparent of the current span, or None when nothing is traced."""
    if not started():
        return None
    context = _otel().trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextmanager
def send_span(
    name: str,
    trace_parent: str | None,
    attributes: Mapping[str, str | int],
    benign: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Run a block in a new trace's span linked to ``trace_parent`` (the span that caused it).

    An exception marks the span failed, unless it is one of ``benign`` (a wait).
    """
    if not started():
        yield
        return
    otel = _otel()
    tracer = otel.trace.get_tracer(__name__, tracer_provider=_state["provider"])
    cause = _span_context(otel, trace_parent)
    with tracer.start_as_current_span(
        name,
        context=otel.context.Context(),  # a root: the cause is a link, not a parent
        kind=otel.trace.SpanKind.CONSUMER,
        links=[otel.trace.Link(cause)] if cause is not None else [],
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except benign:
            raise
        except BaseException as exc:
            span.set_status(otel.trace.Status(otel.trace.StatusCode.ERROR, type(exc).__name__))
            raise


def _client_instrumentors(otel: Any) -> list[Any]:
    return [otel.RequestsInstrumentor(), otel.URLLibInstrumentor(), otel.BotocoreInstrumentor()]


def _span_context(otel: Any, trace_parent: str | None) -> Any:
    found = TRACEPARENT.fullmatch(trace_parent or "")
    if found is None:
        return None
    trace_id, span_id, flags = (int(part, 16) for part in found.groups())
    if not trace_id or not span_id:
        return None
    flagged = otel.trace.TraceFlags(flags)
    return otel.trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=flagged)


def _otlp_exporter() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout)
