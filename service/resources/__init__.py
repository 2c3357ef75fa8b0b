"""Thin Falcon resources. Each declares ``auth`` (method -> roles) and gets
its collaborators injected; domain logic lives in schemas/, keys/ and sync/."""

ALL_STAFF = ('worker', 'advocate', 'supervisor', 'admin', 'liaison')
CASE_STAFF = ('advocate', 'supervisor')
ADMIN = ('admin',)


def json_object(req, *, allowed=None, required=frozenset()) -> dict:
    """Return the request body as a JSON object, or raise a 422 naming fields.

    Args:
        req: The Falcon request.
        allowed: Member names accepted; None accepts any (the caller checks).
        required: Member names that must be present.
    """
    from service.errors import ApiError  # resources import this module first

    body = req.get_media()
    if not isinstance(body, dict):
        raise ApiError(422, 'validation_failed', 'A JSON object is required.',
                       fields={'_schema': ['Send a JSON object.']})
    fields = {name: ['Unknown field.'] for name in set(body) - set(allowed)} if allowed else {}
    fields.update({name: ['Missing data for required field.'] for name in set(required) - set(body)})
    if fields:
        raise ApiError(422, 'validation_failed', 'The request body is not valid.', fields=fields)
    return body
