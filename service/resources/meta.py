"""Published descriptions: JSON Schemas, instrument packs, OpenAPI."""

from __future__ import annotations

from typing import Any

from service.resources import ALL_STAFF


class SchemasResource:
    """``GET /schemas``: JSON Schema of every record type, for app developers."""

    auth = {'GET': 'public'}

    def __init__(self, json_schemas: dict[str, Any]) -> None:
        self._json_schemas = json_schemas

    def on_get(self, req, resp):
        resp.media = {'schemas': self._json_schemas}


class InstrumentsResource:
    """``GET /instruments``: installed screening instrument packs."""

    auth = {'GET': ALL_STAFF}

    def __init__(self, packs: dict[str, Any]) -> None:
        self._packs = packs

    def on_get(self, req, resp):
        resp.media = {'instruments': self._packs}


class OpenAPIResource:
    """``GET /openapi.json``: the service's OpenAPI 3 description."""

    auth = {'GET': 'public'}

    def __init__(self, spec: dict[str, Any]) -> None:
        self._spec = spec

    def on_get(self, req, resp):
        resp.media = self._spec
