"""Short names for Litestar's generic request types."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency

from onsale.gateway.services import Services

AnyRequest = Request[Any, Any, Any]
AnyConnection = ASGIConnection[Any, Any, Any, Any]

#: The process's connections, injected into handlers by name.
Deps = NamedDependency[Services]
