"""The sealing endpoints: propose, list, approve and cancel the sealing of a
youth's records. Thin: ``service.sealing`` holds the rules and does the work.
"""

from __future__ import annotations

import re
from typing import Any

from service.errors import ApiError
from service.resources import json_object
from service.sealing import REASONS, SEALERS, Sealer, public_view

__all__ = ['SealingsResource', 'SealingApproveResource', 'SealingCancelResource',
           'sealing_routes']

_UUID4 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
_YOUTH_CODE = re.compile(r'^[a-z]{1,16}-[a-z]{1,16}-[0-9]{2}$')


def _requested(sealer: Sealer, req, sealing_id: str) -> dict[str, Any]:
    """Return the sealing a request names, once its optional body is checked."""
    if req.content_length:
        json_object(req, allowed={'confirm'})
    return sealer.find(sealing_id, req.context.principal)


class SealingsResource:
    """``POST /sealings`` proposes sealing a youth; ``GET`` lists sealings."""

    auth = {'GET': SEALERS, 'POST': SEALERS}

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def on_get(self, req, resp):
        resp.media = {'sealings': self._sealer.listed(req.context.principal)}

    def on_post(self, req, resp):
        body = json_object(req, allowed={'client_id', 'youth_code', 'reason'},
                           required={'reason'})
        fields = {}
        client_id, youth_code = body.get('client_id'), body.get('youth_code')
        if client_id is not None and not (isinstance(client_id, str) and _UUID4.match(client_id)):
            fields['client_id'] = ['Must be a lowercase version 4 UUID.']
        if youth_code is not None and not (isinstance(youth_code, str)
                                           and _YOUTH_CODE.match(youth_code)):
            fields['youth_code'] = ['Must be a generated code such as quiet-river-07.']
        if client_id is None and youth_code is None:
            fields['client_id'] = ['Give client_id or youth_code to say whose records.']
        if body['reason'] not in REASONS:
            fields['reason'] = [f'Must be one of: {", ".join(REASONS)}.']
        if fields:
            raise ApiError(422, 'validation_failed', 'The request body is not valid.',
                           fields=fields)
        doc = self._sealer.propose(req.context.principal, client_id, youth_code, body['reason'])
        resp.status = 201
        resp.location = f'/sealings/{doc["_id"][len("sealing:"):]}'
        resp.media = self._sealer.shown(doc)


class SealingApproveResource:
    """``POST /sealings/{sealing_id}/approve``: the second person carries the sealing out."""

    auth = {'POST': SEALERS}

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def on_post(self, req, resp, sealing_id):
        doc = _requested(self._sealer, req, sealing_id)
        resp.media = public_view(self._sealer.approve(req.context.principal, doc))


class SealingCancelResource:
    """``POST /sealings/{sealing_id}/cancel``: the proposer or an admin withdraws a proposal."""

    auth = {'POST': SEALERS}

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def on_post(self, req, resp, sealing_id):
        doc = _requested(self._sealer, req, sealing_id)
        resp.media = self._sealer.shown(self._sealer.cancel(req.context.principal, doc))


def sealing_routes(services) -> list[tuple[str, Any]]:
    """Return the sealing routes."""
    sealer = Sealer(services)
    return [
        ('/sealings', SealingsResource(sealer)),
        ('/sealings/{sealing_id}/approve', SealingApproveResource(sealer)),
        ('/sealings/{sealing_id}/cancel', SealingCancelResource(sealer)),
    ]
