"""Opening released records on this machine: the advocate's key, grants and shares.

Used by ``fieldvault advocate open`` and the advocate desk. The personal key
is unwrapped here and org private keys exist in memory only.
"""

from __future__ import annotations

from typing import Any

import click

import keys
import schemas
from fieldvault_client.api import Api

__all__ = ['RecordOpener', 'unlock_personal_key', 'verified_manifest']


def verified_manifest(api: Api, pinned: str) -> dict[str, Any]:
    """Return the server's manifest body, verified against the pinned signer."""
    try:
        signed = api.call('GET', '/keys/manifest')['signed']
        return keys.verify_manifest(signed, pinned)
    except (click.ClickException, keys.errors.KeysError, KeyError, TypeError):
        raise click.ClickException('the key manifest could not be fetched or does not verify '
                                   'against the pinned signing key: do not trust this '
                                   'server') from None


def unlock_personal_key(mine: dict[str, Any], passphrase: str) -> keys.AdvocateKey:
    """Unwrap the caller's personal key from their ``/advocates/me`` answer."""
    try:
        return keys.AdvocateKey.unwrap(mine['wrapped'], passphrase)
    except keys.errors.KeysError:
        raise click.ClickException('wrong passphrase: your personal key could not be '
                                   'unlocked') from None


class RecordOpener:
    """Opens released records on this machine, one keyring per org.

    Only grants and shares of key versions the verified manifest lists are
    used (a stray one of any other version is ignored), and only those of
    the versions a record needs. A failure is reported to the server as a code
    (``record_open_failed`` in the audit log), never a value, and named
    here: no grant of a version, a grant that does not open, or a record
    that does not open. Subclasses change the exception through ``failed``.
    """

    def __init__(self, api: Api, mine: dict[str, Any], personal: keys.AdvocateKey,
                 manifest: dict[str, Any], pinned: str) -> None:
        self._api = api
        self._personal = personal
        self._pinned = pinned
        self._manifest = manifest
        listed = {entry['kid'] for entry in manifest['keys']}
        self._grants = {grant.get('kek'): grant for grant in mine['grants']
                        if grant.get('kek') in listed}
        self._opened: dict[tuple[str, str], Any] = {}

    def failed(self, record_id: str, code: str, message: str) -> Exception:
        """Report a failure to open ``record_id`` to the server; return what to raise."""
        try:
            self._api.call('POST', f'/records/{record_id}/open-failures', {'code': code})
        except click.ClickException:
            pass  # the local answer matters more than the report
        return click.ClickException(message)

    def open(self, record_id: str, released: dict[str, Any]) -> dict[str, Any]:
        """Return the plaintext of a record the server released with its envelopes."""
        document = released['document']
        org = document['org']
        needed = sorted({envelope.get('kek') for envelope in released['envelopes']})
        missing = [kid for kid in needed if kid not in self._grants]
        if missing:
            raise self.failed(record_id, 'no_grant',
                              f'you hold no grant of {", ".join(missing)} (the key version this '
                              f'record is sealed to): ask a custodian who holds it to share it')
        org_keys = []
        for kid in needed:
            if (org, kid) not in self._opened:
                holding = self._grants[kid]
                try:
                    # A custodian's share carries no admin signature: it opens
                    # only to the private key of the manifest's listed pub.
                    if holding.get('type') == 'share':
                        self._opened[(org, kid)] = keys.open_share(
                            holding, self._personal, org=org, manifest_body=self._manifest)
                    else:
                        self._opened[(org, kid)] = keys.open_grant(
                            holding, self._personal, org=org, pinned_public_b64=self._pinned)
                except keys.errors.KeysError:
                    raise self.failed(record_id, 'grant_unopenable',
                                      f'your grant of {kid} could not be opened: ask an admin '
                                      'to remove it and a custodian to share the version '
                                      'again') from None
            org_keys.append(self._opened[(org, kid)])
        try:
            if not org_keys:
                raise keys.InvalidCiphertext  # no envelope released: nothing opens it
            return keys.open_document(
                document, envelopes=released['envelopes'], keyring=keys.Keyring(org_keys),
                paths=schemas.identifying_paths(document['type']), org=org)
        except keys.errors.KeysError:
            raise self.failed(record_id, 'record_unopenable',
                              f'record {record_id} could not be opened with your keys') from None
