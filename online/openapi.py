"""The OpenAPI 3.1 document of the shim, generated from the pydantic payload models."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from online.schemas import ErrorResponse, RelevanceRequest, RelevanceResponse

REF = "#/components/schemas/{model}"


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json_body(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _plain(description: str, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": {"type": "object"} if "json" in media
                                                            else {"type": "string"}}}}


def openapi_document(cfg) -> dict:
    _, schemas = models_json_schema(
        [(RelevanceRequest, "validation"), (RelevanceResponse, "serialization"), (ErrorResponse, "serialization")],
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "LORE relevance shim", "version": "1",
                 "description": f"Limits of this deployment: {cfg.max_items} items, {cfg.max_query_chars} query "
                                f"characters, {cfg.max_body_bytes} body bytes; default deadline "
                                f"{cfg.default_deadline_ms} ms."},
        "paths": {
            "/v1/relevance": {"post": {
                "summary": "Judge items for a query (head: cache, mid: student, tail: teacher within the deadline).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(RelevanceRequest)}}},
                "responses": {"200": _json_body(RelevanceResponse, "Judgments, one per item, in request order."),
                              "400": _json_body(ErrorResponse, "Invalid request; `field` names the culprit."),
                              "413": _json_body(ErrorResponse, "Body too large.")},
            }},
            "/healthz": {"get": {"summary": "Liveness.", "responses": {"200": _plain("The process answers.")}}},
            "/readyz": {"get": {"summary": "Readiness: `ready`, or `degraded` when Redis is down (still answers).",
                                "responses": {"200": _plain("Dependency states.")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics.",
                                 "responses": {"200": _plain("Text exposition format.", "text/plain")}}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": _plain("OpenAPI 3.1.")}}},
        },
        "components": {"schemas": schemas["$defs"]},
    }
