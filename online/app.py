"""The Flask app factory of the relevance shim (DESIGN.md §6).

    app = create_app(ServeConfig.load())                       # dependencies built from config
    app = create_app(cfg, redis_client=fake, student=s, teacher=t)   # injected (tests, benches)

Endpoints: ``POST /v1/relevance``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
``GET /openapi.json``. Bad input gets a 400/413 JSON error naming the field; it never reaches
the router and never touches stored data. Every response carries ``X-Request-ID``; every request
is logged as one JSON line.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid

import orjson
from flask import Flask, Response, g, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from online.config import ServeConfig
from online.schemas import RelevanceRequest

log = logging.getLogger("lore.shim")


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status=status,
                    mimetype="application/json", headers={"X-Request-ID": g.get("request_id", "")})


def _error(status: int, message: str, field: str | None = None) -> Response:
    return _json({"error": message, "field": field, "request_id": g.get("request_id", "")}, status)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    return field, error["msg"]


def _configure_json_logs() -> None:
    if log.handlers:
        return
    from pythonjsonlogger.orjson import OrjsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OrjsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def build_teacher(cfg: ServeConfig):
    from online.teacher import InProcessTeacher, OpenAITeacher

    if cfg.teacher_url:
        key = cfg.teacher_api_key.get_secret_value() if cfg.teacher_api_key else None
        return OpenAITeacher(cfg.teacher_url, cfg.teacher_model or "teacher", key, model_dir=cfg.teacher_dir,
                             rules=cfg.rules_in_prompt)
    if cfg.teacher is not None:
        return InProcessTeacher(cfg.teacher, cfg.rules_in_prompt)
    return None


def create_app(cfg: ServeConfig | None = None, *, redis_client=None, student=None, teacher=None) -> Flask:
    import redis

    from lore_ml.online_store import CacheReader, Keys, connect
    from lore_ml.students import LexicalStudent, RepresentationStudent
    from online.metrics import ShimMetrics
    from online.openapi import openapi_document
    from online.routing import RedisHealth, Router

    cfg = cfg or ServeConfig.load()
    _configure_json_logs()
    timeout = cfg.redis_timeout_ms / 1000
    client = redis_client or connect(cfg.redis, socket_timeout=timeout, socket_connect_timeout=timeout,
                                     health_check_interval=0)
    reader = CacheReader(client, Keys(cfg.redis.key_prefix))
    health = RedisHealth(cfg.redis_retry_s)
    if student is None:
        student = RepresentationStudent(cfg.student_path) if cfg.student_path else LexicalStudent()
    teacher = teacher if teacher is not None else build_teacher(cfg)
    router = Router(reader, student, teacher, cfg, health)

    def queue_depth():
        if not health.available():
            return None
        try:
            return client.xlen(reader.keys.tail_queue)
        except redis.RedisError as exc:
            health.failed(exc)
            return None

    metrics = ShimMetrics(queue_depth)
    app = Flask("lore-shim")
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.extensions["lore"] = {"config": cfg, "router": router, "metrics": metrics, "health": health}

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied[:64] if supplied.isascii() and supplied.isprintable() and supplied else uuid.uuid4().hex

    @app.post("/v1/relevance")
    def relevance():
        body = request.get_data(cache=False)  # raises 413 past max_body_bytes
        try:
            payload = orjson.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return _rejected(400, f"body is not valid UTF-8 (byte {exc.start})", "body")
        except orjson.JSONDecodeError as exc:
            return _rejected(400, f"body is not JSON: {exc}", "body")
        try:
            parsed = RelevanceRequest.model_validate(payload)
        except ValidationError as exc:
            field, message = _first_error(exc)
            return _rejected(400, message, field)
        if len(parsed.items) > cfg.max_items:
            return _rejected(400, f"at most {cfg.max_items} items per request, got {len(parsed.items)}", "items")
        if len(parsed.query) > cfg.max_query_chars:
            return _rejected(400, f"query longer than {cfg.max_query_chars} characters", "query")
        routed = router.route(parsed.query, parsed.items, parsed.deadline_ms, g.started)
        latency = time.perf_counter() - g.started
        metrics.requests.labels(routed.tier, "200").inc()
        metrics.latency.labels(routed.tier, routed.sources).observe(latency)
        if routed.cache_hits:
            metrics.cache_lookups.labels("hit").inc(routed.cache_hits)
        if routed.cache_misses:
            metrics.cache_lookups.labels("miss").inc(routed.cache_misses)
        if routed.fallback_reason:
            metrics.fallbacks.labels(routed.fallback_reason).inc()
        log.info("relevance", extra={"request_id": g.request_id, "tier": routed.tier, "source": routed.sources,
                                     "items": len(parsed.items), "latency_ms": round(latency * 1000, 2),
                                     "cache_version": routed.cache_version, "fallback": routed.fallback_reason})
        return _json({"request_id": g.request_id, "query_norm": routed.query_norm, "tier": routed.tier,
                      "cache_version": routed.cache_version, "latency_ms": round(latency * 1000, 3),
                      "items": routed.items})

    def _rejected(status: int, message: str, field: str | None) -> Response:
        metrics.requests.labels("none", str(status)).inc()
        log.info("rejected", extra={"request_id": g.request_id, "status": status, "field": field, "error": message})
        return _error(status, message, field)

    @app.get("/healthz")
    def healthz():
        return _json({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        try:
            client.ping()
            health.succeeded()
            redis_state = "ok"
        except redis.RedisError as exc:
            health.failed(exc)
            redis_state = "down"
        return _json({"status": "ready" if redis_state == "ok" else "degraded", "redis": redis_state,
                      "redis_error": health.last_error, "cache_version": router.last_version,
                      "student": student.model_version,
                      "teacher": getattr(teacher, "model_version", None)})

    @app.get("/metrics")
    def metrics_endpoint():
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi():
        return _json(openapi_document(cfg))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return _rejected(413, f"body larger than {cfg.max_body_bytes} bytes", "body")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        metrics.requests.labels("none", "500").inc()
        return _error(500, "internal error")

    return app
