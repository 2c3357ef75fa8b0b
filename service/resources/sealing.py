"""The sealing endpoints: propose, list, approve and cancel the sealing of a
youth's records. Thin: ``service.sealing`` holds the rules and does the work.
"""

from __future__ import annotations

from typing import Any

from service.openapi_bodies import SealingApproveBody, SealingBody, load_body
from service.sealing import SEALERS, Sealer, public_view

__all__ = ['SealingsResource', 'SealingApproveResource', 'SealingCancelResource',
           'sealing_routes']


def _requested(sealer: Sealer, req, sealing_id: str) -> dict[str, Any]:
    """Return the sealing a request names, once its optional body is checked."""
    load_body(req, SealingApproveBody)
    return sealer.find(sealing_id, req.context.principal)


class SealingsResource:
    """``POST /sealings`` proposes sealing a youth; ``GET`` lists sealings."""

    auth = {'GET': SEALERS, 'POST': SEALERS}

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def on_get(self, req, resp):
        resp.media = {'sealings': self._sealer.listed(req.context.principal)}

    def on_post(self, req, resp):
        body = load_body(req, SealingBody)
        client_id, youth_code = body.get('client_id'), body.get('youth_code')
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
