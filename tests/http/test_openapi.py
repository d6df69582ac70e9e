"""The OpenAPI document: generated from the models, committed copy never drifts, every route."""

from __future__ import annotations

from typing import Any

from router import web
from router.http.app import create_app
from router.http.openapi import DOCS_PATH, build_openapi, openapi_text


def test_committed_openapi_equals_the_generated_one() -> None:
    assert DOCS_PATH.read_text(encoding="utf-8") == openapi_text(), (
        "docs/openapi.json is stale: run `python -m router.http.openapi`"
    )


def test_every_route_is_documented_and_nothing_else(make_settings: Any) -> None:
    app = create_app(make_settings())
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and route.name not in web.ROUTE_NAMES  # the ops page and card: pages, not the API
    }
    documented = {
        (method, path) for path, item in build_openapi()["paths"].items() for method in item
    }
    assert served == documented


def test_request_schema_is_the_validating_model() -> None:
    schema = build_openapi()["components"]["schemas"]["RouteRequest"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["conversation_id"]["anyOf"][0]["maxLength"] == 256


def test_public_operations_need_no_security() -> None:
    paths = build_openapi()["paths"]
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert paths[path]["get"]["security"] == []
    assert paths["/v1/route"]["post"]["security"]


async def test_the_document_names_the_api_version_and_the_package_version(client: Any) -> None:
    import router

    info = (await (await client.get("/openapi.json")).json())["info"]
    assert info["version"] == router.__api_version__ == "1.2"
    assert info["x-package-version"] == router.__version__
