"""Record validation (and, with encryption, desk intake and opening)."""

from __future__ import annotations

import schemas
from service.errors import ApiError
from service.resources import ALL_STAFF


class ValidateResource:
    """``POST /records/validate``: check a document as it would be stored.

    Identifying fields must already be sealed (fle/1): plaintext there is
    refused with 422 naming the field, so identifying values never need to
    reach the server in the clear.
    """

    auth = {'POST': tuple(role for role in ALL_STAFF if role != 'liaison')}

    def on_post(self, req, resp):
        body = req.get_media()
        if not isinstance(body, dict):
            raise ApiError(422, 'validation_failed', 'A JSON object is required.',
                           fields={'_schema': ['Send a JSON object.']})
        document = schemas.validate_document(body, sealed=True)
        resp.media = {'valid': True, 'type': document['type'], 'schema': document['schema']}
