"""Key custody endpoints: the holder census, pending shares, uploading shares,
and the export the recovery ceremony takes to its offline machine.

The server only stores and hands out metadata, certificates and sealed
material. A share is sealed on the sharer's own machine (or, for the
recovery ceremony, on the trustees' offline machine); the server checks who
may hand which version to whom, and the recipient's client checks the key
against the signed manifest when it opens the share.
"""

from __future__ import annotations

from typing import Any

import keys
from keys.advocates import RECOVERY_ADVOCATE
from keys.shares import live_entry
from service.custody import Custody
from service.errors import ApiError
from service.openapi_bodies import SharesBody, load_body
from service.resources import ADMIN

__all__ = ['custody_routes', 'refuse_recovery_only', 'refuse_unheld_activation',
           'EXPORT_FORMAT']

#: The ``format`` member of the file ``GET /keys/recovery/export`` answers.
EXPORT_FORMAT = 'fieldvault-recovery-export/1'
#: Query parameter with which an operator accepts leaving versions recovery-only.
ACCEPT_PARAM = 'accept_recovery_only'


def custody_of(services) -> Custody:
    """Return the custody reader of the app's databases."""
    return Custody(services.couch, services.db('keyvault'), services.db('directory'),
                   services.db('config'))


def refuse_recovery_only(custody: Custody, audit, req, leaving: set[str], *,
                         action: str, subject: str | None) -> None:
    """Refuse a change that leaves versions with envelopes held by no active staff.

    The operator can accept it explicitly with ``?accept_recovery_only=true``;
    that acceptance is audited (``recovery_only_accepted``) with the versions.

    Raises:
        ApiError: 409 ``recovery_only``, naming the versions (``fields.versions``).
    """
    versions = custody.versions_left_unheld(leaving)
    if not versions:
        return
    if not req.get_param_as_bool(ACCEPT_PARAM, default=False):
        named = ', '.join(versions)
        raise ApiError(
            409, 'recovery_only',
            f'This would leave {named} with live envelopes held by no active staff (only the '
            'recovery key): a holder shares them first (`fieldvault keys share`), or pass '
            f'{ACCEPT_PARAM}=true to accept it.',
            fields={'versions': versions})
    audit.record('recovery_only_accepted', actor=f'user:{req.context.principal.id}',
                 subject=subject, details={'versions': versions, 'action': action})


def refuse_unheld_activation(custody: Custody, audit, req, kid: str) -> None:
    """Refuse making ``kid`` the active version while no active staff holds it.

    Tablets seal every new record to the active version, so a version only
    the recovery key holds would make each new record unreadable to the
    center. The operator can accept it explicitly with
    ``?accept_recovery_only=true`` (audited as ``recovery_only_accepted``),
    e.g. when the last holder has left and the recovery ceremony follows.

    Raises:
        ApiError: 409 ``recovery_only``, naming the version (``fields.versions``).
    """
    if custody.active_holders(kid):
        return
    if not req.get_param_as_bool(ACCEPT_PARAM, default=False):
        raise ApiError(
            409, 'recovery_only',
            f'No active staff holds {kid}: as the active version it would leave every new '
            'record readable only with the recovery key. Run the recovery ceremony for the '
            'current version first (`fieldvault recovery export`), or pass '
            f'{ACCEPT_PARAM}=true to accept it.',
            fields={'versions': [kid]})
    audit.record('recovery_only_accepted', actor=f'user:{req.context.principal.id}',
                 subject=None, details={'versions': [kid], 'action': 'manifest_activation'})


class _Base:
    def __init__(self, services, store) -> None:
        self._couch = services.couch
        self._keyvault_db = services.db('keyvault')
        self._custody = custody_of(services)
        self._store = store
        self._audit = services.audit
        self._org = services.config.org

    def _manifest_or_409(self) -> dict[str, Any]:
        body = self._store.manifest_body()
        if body is None:
            raise ApiError(409, 'no_manifest', 'No key manifest is published yet.')
        return body


class HoldersResource(_Base):
    """``GET /keys/holders``: per key version that is live or has envelopes,
    the envelope count, the active staff holding it and whether only the
    recovery key remains. Metadata only."""

    auth = {'GET': ('admin', 'supervisor')}

    def on_get(self, req, resp):
        resp.media = {'versions': self._custody.report(self._store.manifest_body())}


class PendingResource(_Base):
    """``GET /keys/pending``: live versions that certified active staff lack.

    A holder sees what they can share (versions they hold, never to
    themselves); an admin sees the whole queue. Each item carries the
    recipient's public record and certificate for the sharer's CLI to verify.
    """

    auth = {'GET': ('advocate', 'supervisor', 'admin')}

    def on_get(self, req, resp):
        principal = req.context.principal
        sharer = None if 'admin' in principal.roles else principal.id
        resp.media = {'pending': self._custody.pending(self._store.manifest_body(),
                                                       sharer=sharer)}


class SharesResource(_Base):
    """``POST /keys/shares``: store shares sealed on a holder's machine.

    Body ``{"shares": [...]}`` (``keys.shares`` format). A share ``via``
    ``share`` must come from an active holder of that version, as
    ``shared_by``; one ``via`` ``recovery`` (the recovery ceremony) from an
    admin, only for a version no active staff holds any more. Every
    recipient is certified active staff other than the caller and gets a
    live version they do not hold yet; versions they hold already are
    skipped. Nothing is written unless every share passes.
    """

    auth = {'POST': ('advocate', 'supervisor', 'admin')}

    def on_post(self, req, resp):
        shares = load_body(req, SharesBody)['shares']
        for share in shares:
            keys.validate_share(share)
        if len({share['_id'] for share in shares}) != len(shares):
            raise ApiError(422, 'validation_failed', 'A share is listed twice.',
                           fields={'shares': ['Send each (version, recipient) once.']})
        manifest = self._manifest_or_409()
        principal = req.context.principal
        custody = self._custody
        users, key_docs = custody.users(), custody.key_docs()
        active = custody.active_staff(users, key_docs)
        held = custody.holdings()
        to_write, skipped = [], []
        for share in shares:
            kek, recipient = share['kek'], share['advocate']
            if live_entry(manifest, kek) is None:
                raise ApiError(422, 'not_live', f'{kek} is not a live version of the manifest.',
                               fields={'kek': ['Share active or decrypt-only versions only.']})
            # APPSEC: a new holder needs a second person; nobody hands a
            # version to themselves, whatever they hold.
            if recipient == principal.id:
                raise ApiError(403, 'self_share',
                               'Nobody can share a key version with themselves; another '
                               'holder shares it with you.')
            if recipient not in active:
                raise ApiError(422, 'not_certified_staff',
                               'The recipient is not an enabled advocate or supervisor with a '
                               'certified key.', fields={'advocate': ['Not certified staff.']})
            if share['apk'] != key_docs[recipient]['public']['apk']:
                raise ApiError(422, 'key_mismatch', 'The share is sealed to another key.')
            holders = {name for name in held.get(kek, {}) if name in active}
            if share['via'] == 'share':
                if share['shared_by'] != principal.id or principal.id not in holders:
                    raise ApiError(403, 'not_a_holder',
                                   f'Only an active holder of {kek} can share it, in their '
                                   'own name.')
            else:
                if 'admin' not in principal.roles or share['shared_by'] != RECOVERY_ADVOCATE:
                    raise ApiError(403, 'recovery_upload',
                                   'Recovery shares are uploaded by an admin, from the '
                                   'recovery ceremony.')
                if holders:
                    raise ApiError(409, 'holders_remain',
                                   f'{kek} still has active holders ({", ".join(sorted(holders))}'
                                   '): they share it; the recovery key is for when none remain.',
                                   fields={'holders': sorted(holders)})
            if recipient in held.get(kek, {}):
                skipped.append(share['_id'])
                continue
            to_write.append({name: value for name, value in share.items()
                             if name not in ('_rev', '_revisions')})
        stored = []
        conflicts = []
        if to_write:
            for share, result in zip(to_write, self._couch.bulk_docs(self._keyvault_db, to_write)):
                (conflicts if result.get('error') else stored).append(share)
        for share in stored:
            self._audit.record('key_shared', actor=f'user:{principal.id}',
                               subject=f'user:{share["advocate"]}',
                               details={'kek': share['kek'], 'shared_by': share['shared_by'],
                                        'via': share['via']})
        resp.status = 201 if stored else 200
        resp.media = {'stored': len(stored), 'skipped': skipped,
                      'conflicts': [share['_id'] for share in conflicts]}


class RecoveryExportResource(_Base):
    """``GET /keys/recovery/export``: what the offline recovery step needs.

    The signer's public key, the signed manifest, the recovery key's grants
    of every live version that no active staff holds, and the pending
    recipients of those versions with their certificates. Nothing in it
    opens anything without the recovery key, which never comes online.
    """

    auth = {'GET': ADMIN}

    def on_get(self, req, resp):
        manifest_body = self._manifest_or_409()
        report = self._custody.report(manifest_body)
        versions = [entry['kid'] for entry in report
                    if entry['status'] in ('active', 'decrypt-only') and not entry['holders']]
        grants = []
        for kid in versions:
            grant = self._couch.get_or_none(self._keyvault_db, f'grant:{kid}:{RECOVERY_ADVOCATE}')
            if grant is not None and grant.get('type') == 'grant':
                grants.append({k: v for k, v in grant.items() if k not in ('_rev', '_revisions')})
        pending = [{k: item[k] for k in ('kek', 'to', 'public', 'certificate')}
                   for item in self._custody.pending(manifest_body) if item['kek'] in versions]
        self._audit.record('recovery_exported', actor=f'user:{req.context.principal.id}',
                           details={'versions': versions, 'recipients': len(pending)})
        resp.media = {
            'format': EXPORT_FORMAT,
            'org': self._org,
            'signer': self._store.signer_public(),
            'manifest': self._store.manifest()['signed'],
            'versions': versions,
            'recovery_grants': grants,
            'pending': pending,
        }


def custody_routes(services, store) -> list[tuple[str, Any]]:
    """Return the key custody routes."""
    return [
        ('/keys/holders', HoldersResource(services, store)),
        ('/keys/pending', PendingResource(services, store)),
        ('/keys/shares', SharesResource(services, store)),
        ('/keys/recovery/export', RecoveryExportResource(services, store)),
    ]
