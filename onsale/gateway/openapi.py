"""``/schema``: the HTTP API's OpenAPI document, and Swagger UI to read and try it.

The UI's files are vendored under ``static/swagger-ui/`` (see its README): Litestar would
load them from a CDN, and neither this machine nor an organizer's browser may be online.
``GET /schema/openapi.json`` is the document itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, SecurityScheme

#: The vendored Swagger UI (swagger-ui-dist), served by the pages' static router.
_UI = "/static/swagger-ui/"


def config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="onsale",
        version="0.1.0",
        description=(
            "A high-demand ticket on-sale engine. Organizer routes take "
            "`Authorization: Bearer <token>` (ONSALE_ADMIN_TOKEN or a personal API token); "
            'every error is `{"code", "detail"}` with a stable code.'
        ),
        path="/schema",
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=_UI + "swagger-ui-bundle.js",
                css_url=_UI + "swagger-ui.css",
                standalone_preset_js_url=_UI + "swagger-ui-standalone-preset.js",
                path="/",
                favicon="",  # Litestar's default is fetched from a CDN
            )
        ],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
        security=[{"bearer": []}],
    )


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """msgspec's JSON Schema with its ``$defs`` references put in place (the bodies'
    structs are not recursive), so that it stands alone inside the OpenAPI document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body(model: type[msgspec.Struct]) -> type[Operation]:
    """An operation documenting ``model`` as its JSON body: for routes that decode their body
    themselves (``gateway.body.decode``, for the catalog's error answers), which Litestar
    therefore cannot see."""
    raw = msgspec.json.schema(model)
    schema = _inline(raw, raw.get("$defs", {}))

    @dataclass
    class WithBody(Operation):
        def to_schema(self) -> dict[str, Any]:
            out = super().to_schema()
            content = {"application/json": {"schema": schema}}
            out["requestBody"] = {"required": True, "content": content}
            return out

    return WithBody
