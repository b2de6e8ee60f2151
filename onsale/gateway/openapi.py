"""``/schema``: the HTTP API's OpenAPI document, and Swagger UI to read and try it.

The UI's files are vendored under ``static/swagger-ui/`` (see its README): Litestar would
load them from a CDN, and neither this machine nor an organizer's browser may be online.
``GET /schema/openapi.json`` is the document itself.
"""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

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
