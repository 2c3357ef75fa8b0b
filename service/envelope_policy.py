"""The envelope rules of a desk submission (intake and correction).

A record sealed on a staff member's machine arrives with the ``rk:``
envelopes of its record keys. Each must be well formed, belong to the
submitted document, be one the submission is expected to bring (a key of
the header, or a new key of a corrected header), and pass the one key
rule every new envelope meets, whichever path it takes
(``sync.key_policy.check_new_envelope``, which the sync gateway applies to
pushed envelopes). Every expected key needs its envelope. Refusals are
``EnvelopeRefused``; ``service.errors`` maps them to 422.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

import keys
from sync.key_policy import check_new_envelope

__all__ = ['EnvelopeRefused', 'check_desk_envelopes']


class EnvelopeRefused(Exception):
    """A submitted envelope was refused, or one is missing.

    Attributes:
        code: ``invalid_envelope`` or ``missing_envelope``.
        message: One sentence naming the rule, never a value.
        fields: Messages by envelope position.
    """

    def __init__(self, code: str, message: str, fields: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


def check_desk_envelopes(
    document: dict[str, Any],
    envelopes: list[Any],
    *,
    expected: Iterable[str],
    unexpected_reason: str,
    manifest_body: dict[str, Any] | None,
    now: float | _dt.datetime,
) -> None:
    """Check the envelopes a desk submission brings for ``document``.

    Args:
        document: The validated, sealed record.
        envelopes: The submitted ``rk:`` envelopes.
        expected: The record key ids the submission must bring envelopes for.
        unexpected_reason: What to say of an envelope for another key id.
        manifest_body: The verified current manifest body, or None.
        now: Server time.

    Raises:
        InvalidKeyMaterial: An envelope is malformed.
        EnvelopeRefused: An envelope is refused, or one is missing.
    """
    wanted = set(expected)
    for index, envelope in enumerate(envelopes):
        keys.validate_envelope(envelope)
        problems = []
        if envelope['doc'] != document['_id']:
            problems.append('The envelope belongs to another document.')
        if envelope['rkid'] not in wanted:
            problems.append(unexpected_reason)
        refusal = check_new_envelope(envelope, manifest_body, now)
        if refusal is not None:
            problems.append(str(refusal))
        if problems:
            raise EnvelopeRefused('invalid_envelope', 'An envelope was refused.',
                                  {'envelopes': {str(index): problems}})
    if wanted - {envelope['rkid'] for envelope in envelopes}:
        raise EnvelopeRefused('missing_envelope',
                              'Every record key in the header needs its envelope.',
                              {'envelopes': ['An envelope is missing for a header key.']})
