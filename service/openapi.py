"""OpenAPI 3 description of the service, generated with apispec.

Record schemas come from ``schemas/`` through apispec's marshmallow plugin;
the operations come from the route table that ``create_app`` also mounts, so
the description cannot list a route the app does not serve.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

import schemas
from service.openapi_bodies import BODY_SCHEMAS, OPTIONAL_BODIES, path_parameter_schema

__all__ = ['Operation', 'build_spec']

_ERROR = {
    'type': 'object',
    'required': ['code', 'title', 'description'],
    'properties': {
        'code': {'type': 'string'},
        'title': {'type': 'string'},
        'description': {'type': 'string'},
        'fields': {'type': 'object', 'description': 'per-field messages (422 only)'},
    },
}


@dataclasses.dataclass(frozen=True)
class Operation:
    """One documented operation.

    Attributes:
        path: URI template as mounted.
        method: Lower-case HTTP method.
        summary: One line.
        roles: Roles allowed, or ``'public'``.
        request: JSON Schema or component name of the body, if any.
        response: Description of the success answer.
        status: Success status.
        query: OpenAPI parameter objects of the query string.
    """

    path: str
    method: str
    summary: str
    roles: Any
    request: Any = None
    response: str = 'OK'
    status: int = 200
    query: tuple = ()


def build_spec(operations: list[Operation], *, version: str) -> dict[str, Any]:
    """Return the OpenAPI document as a dict."""
    spec = APISpec(
        title='fieldvault',
        version=version,
        openapi_version='3.1.0',
        plugins=[MarshmallowPlugin()],
        info={'description': 'Secure offline-first field intake backend. Identifying fields '
                             'are sealed with fle/1 (docs/ENCRYPTION.md).'},
    )
    spec.components.security_scheme('bearer', {'type': 'http', 'scheme': 'bearer'})
    spec.components.security_scheme('deviceBasic', {'type': 'http', 'scheme': 'basic'})
    spec.components.schema('Error', _ERROR)
    schemas.register_with_apispec(spec)
    for name, body_schema in BODY_SCHEMAS.items():
        spec.components.schema(name, schema=body_schema)
    by_path: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            'summary': op.summary,
            'responses': {
                str(op.status): {'description': op.response},
                'default': {'description': 'Error',
                            'content': {'application/json': {
                                'schema': {'$ref': '#/components/schemas/Error'}}}},
            },
        }
        if op.roles == 'public':
            entry['security'] = []
        elif 'device' in op.roles:
            entry['security'] = [{'deviceBasic': []}, {'bearer': []}]
            entry['x-roles'] = list(op.roles)
        else:
            entry['security'] = [{'bearer': []}]
            entry['x-roles'] = list(op.roles)
        parameters = [
            {'name': name, 'in': 'path', 'required': True,
             'schema': path_parameter_schema(op.path, name)}
            for name in re.findall(r'\{([^}]+)\}', op.path)
        ] + list(op.query)
        if parameters:
            entry['parameters'] = parameters
        if op.request is not None:
            schema = ({'$ref': f'#/components/schemas/{op.request}'}
                      if isinstance(op.request, str) else op.request)
            optional = isinstance(op.request, str) and op.request in OPTIONAL_BODIES
            entry['requestBody'] = {'required': not optional,
                                    'content': {'application/json': {'schema': schema}}}
        by_path.setdefault(op.path, {})[op.method] = entry
    for path, ops in by_path.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
