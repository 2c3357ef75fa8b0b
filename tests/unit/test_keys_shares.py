"""Shares: a held org key version sealed to another certified person, accepted
only when its key is the one the signed manifest lists for that version."""

from __future__ import annotations

import copy

import pytest

import keys
from keys import errors

pytestmark = pytest.mark.unit

ORG = 'org-test'


@pytest.fixture(scope='module')
def world():
    signer = keys.SigningKey.generate()
    v1 = keys.OrgKeyPair.generate('oek-1')
    v2 = keys.OrgKeyPair.generate('oek-2')
    body = keys.build_manifest(ORG, 2, [v2.manifest_entry('active'),
                                        v1.manifest_entry('decrypt-only', '2030-01-01')])
    holder = keys.AdvocateKey.generate('adv-a')
    newcomer = keys.AdvocateKey.generate('sup-b')
    grant = keys.seal_grant(v1, holder.public_record(), org=ORG, granted_by='admin-1',
                            signing_key=signer)
    return {'signer': signer, 'v1': v1, 'v2': v2, 'manifest': body, 'holder': holder,
            'newcomer': newcomer, 'grant': grant}


def test_a_share_opens_to_the_manifest_key_for_its_recipient_only(world):
    share = keys.seal_share(world['v1'], world['newcomer'].public_record(), org=ORG,
                            shared_by='adv-a', manifest_body=world['manifest'])
    keys.validate_share(share)
    assert share['_id'] == 'grant:oek-1:sup-b' and 'sig' not in share
    opened = keys.open_share(share, world['newcomer'], org=ORG, manifest_body=world['manifest'])
    assert opened.public_b64() == world['v1'].public_b64()
    with pytest.raises(errors.InvalidCiphertext):
        keys.open_share(share, world['holder'], org=ORG, manifest_body=world['manifest'])
    with pytest.raises(errors.InvalidCiphertext):
        keys.open_share(share, world['newcomer'], org='org-other',
                        manifest_body=world['manifest'])


def test_a_planted_share_of_another_key_is_refused(world):
    # A server that seals a key of its own under a listed kid: the HPKE opens,
    # the binding to the manifest's pub does not.
    planted_key = keys.OrgKeyPair.generate('oek-1')
    forged_manifest = copy.deepcopy(world['manifest'])
    forged_manifest['keys'][1]['pub'] = planted_key.public_b64()
    planted = keys.seal_share(planted_key, world['newcomer'].public_record(), org=ORG,
                              shared_by='adv-a', manifest_body=forged_manifest)
    with pytest.raises(errors.InvalidCiphertext):
        keys.open_share(planted, world['newcomer'], org=ORG, manifest_body=world['manifest'])


def test_only_live_listed_keys_are_shared_or_accepted(world):
    with pytest.raises(errors.InvalidKeyMaterial):
        keys.seal_share(keys.OrgKeyPair.generate('oek-1'), world['newcomer'].public_record(),
                        org=ORG, shared_by='adv-a', manifest_body=world['manifest'])
    share = keys.seal_share(world['v1'], world['newcomer'].public_record(), org=ORG,
                            shared_by='adv-a', manifest_body=world['manifest'])
    retired = copy.deepcopy(world['manifest'])
    retired['keys'][1] = {'kid': 'oek-1', 'suite': keys.SUITE, 'status': 'retired'}
    with pytest.raises(errors.InvalidCiphertext):
        keys.open_share(share, world['newcomer'], org=ORG, manifest_body=retired)


def test_holdings_open_grants_and_shares_into_one_keyring(world):
    share = keys.seal_share(world['v1'], world['newcomer'].public_record(), org=ORG,
                            shared_by='adv-a', manifest_body=world['manifest'])
    keyring = keys.open_holdings([share], world['newcomer'], org=ORG,
                                 pinned_public_b64=world['signer'].public_b64(),
                                 manifest_body=world['manifest'])
    assert keyring.kids == ('oek-1',)
    keyring = keys.open_holdings([world['grant']], world['holder'], org=ORG,
                                 pinned_public_b64=world['signer'].public_b64(),
                                 manifest_body=world['manifest'])
    assert keyring.kids == ('oek-1',)
    # A grant dressed as something else is still a grant: its signature is checked.
    unsigned = dict(world['grant'], sig=keys.SigningKey.generate().sign(
        {k: v for k, v in world['grant'].items() if k != 'sig'}))
    with pytest.raises(errors.InvalidCiphertext):
        keys.open_holdings([unsigned], world['holder'], org=ORG,
                           pinned_public_b64=world['signer'].public_b64(),
                           manifest_body=world['manifest'])


@pytest.mark.parametrize('change', [
    {'type': 'grant'}, {'via': 'admin'}, {'_id': 'grant:oek-2:sup-b'}, {'extra': 1},
    {'ct': 'AAAA'}, {'shared_by': 'not an id'},
])
def test_validate_share_names_the_member(world, change):
    share = keys.seal_share(world['v1'], world['newcomer'].public_record(), org=ORG,
                            shared_by='adv-a', manifest_body=world['manifest'])
    share.update(change)
    with pytest.raises(errors.InvalidKeyMaterial):
        keys.validate_share(share)
