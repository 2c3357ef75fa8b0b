"""Which org key versions the server still accepts new envelopes for.

One pure rule, ``check_new_envelope``, for every path a new ``rk:`` envelope
takes into keyvault: the sync gateway (envelopes pushed by tablets) and desk
intake and correction (``POST /records``, ``PUT /caseload/{id}``). It does no
I/O: callers pass the verified manifest body and the current time.

Rules (docs/ENCRYPTION.md section 15, anchors-encryption.md 4.4):

* no manifest published yet: refused. Nothing may be sealed to a key the org
  has not published and signed (DESIGN.md section 5): an envelope sealed to
  an unpublished key version is sealed to a key no custodian is known to
  hold, and a kid used before its publication would later name another
  key. A pushed envelope refused this way is quarantined, never lost;
* the ``active`` key is accepted;
* a ``decrypt-only`` key is accepted through the whole UTC day of its
  ``accept_until`` date, then refused; a decrypt-only key without
  ``accept_until`` is refused (nothing new may be sealed to it);
* a ``retired`` key, or a key the manifest does not list, is refused.

The envelope's own ``at`` is written by the device and is not authenticated,
so the server's clock decides, never the envelope.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = ['KeyRefusal', 'accept_until_passed', 'check_new_envelope']


class KeyRefusal(str):
    """The reason an envelope's key version is refused (a plain string)."""

    __slots__ = ()


def _today(now: float | _dt.datetime) -> _dt.date:
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            return now.date()
        return now.astimezone(_dt.timezone.utc).date()
    return _dt.datetime.fromtimestamp(now, _dt.timezone.utc).date()


def accept_until_passed(accept_until: str, now: float | _dt.datetime) -> bool:
    """Return True once the UTC day ``accept_until`` (YYYY-MM-DD) is over."""
    return _today(now) > _dt.date.fromisoformat(accept_until)


def check_new_envelope(
    envelope: dict[str, Any], manifest_body: dict[str, Any] | None, now: float | _dt.datetime,
) -> KeyRefusal | None:
    """Return why a new envelope's ``kek`` is not accepted, or None.

    Args:
        envelope: A structurally valid ``rk:`` envelope (``kek`` is read).
        manifest_body: The verified current manifest body; ``None`` when no
            manifest is published yet (then every envelope is refused).
        now: Server time (epoch seconds or a datetime).

    Returns:
        None when accepted, else a one-sentence reason naming the key
        version and its status (key ids are not identifying).
    """
    if manifest_body is None:
        return KeyRefusal('No key manifest is published yet, so no key version accepts '
                          'new envelopes.')
    kek = envelope.get('kek') if isinstance(envelope, dict) else None
    entry = next((item for item in manifest_body.get('keys', ())
                  if item.get('kid') == kek), None)
    if entry is None:
        return KeyRefusal('The envelope is sealed to a key version the manifest does not list.')
    status = entry.get('status')
    if status == 'active':
        return None
    if status == 'decrypt-only':
        accept_until = entry.get('accept_until')
        if accept_until is None:
            return KeyRefusal(f'The key version {kek} is decrypt-only and accepts no new '
                              'envelopes.')
        if accept_until_passed(accept_until, now):
            return KeyRefusal(f'The key version {kek} stopped accepting new envelopes after '
                              f'{accept_until}; the device must fetch the current manifest '
                              'and seal again.')
        return None
    return KeyRefusal(f'The key version {kek} is retired.')
