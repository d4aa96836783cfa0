import stat

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from spacetimedb.server.auth import AuthError, KeyPair, TokenAuthority, identity_from_claims


def test_identity_derivation_matches_spacetimedb_vector():
    assert identity_from_claims("example.com", "123").to_hex() == (
        "c200ef884364c1a99be0298dc68f2004e6b97c09d1b1658b7db22f51fb662059"
    )


def test_keys_are_created_once_with_private_mode(tmp_path):
    first = KeyPair.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / "id_ecdsa").stat().st_mode) == 0o600
    again = KeyPair.load_or_create(tmp_path)
    assert again.public_pem == first.public_pem and b"BEGIN PUBLIC KEY" in first.public_pem


def test_mint_validate_reissue(tmp_path):
    authority = TokenAuthority(KeyPair.load_or_create(tmp_path))
    identity, token = authority.mint()
    claims = authority.validate(token)
    assert (
        claims.identity == identity and claims.issuer == "localhost" and claims.audience == ("spacetimedb",)
    )
    short = authority.reissue(claims, 60)
    assert authority.validate(short).identity == identity
    assert jwt.decode(short, options={"verify_signature": False})["exp"] is not None
    never = jwt.encode(
        {"sub": "s", "iss": "localhost", "exp": None}, authority.keys.private_key, algorithm="ES256"
    )
    assert authority.validate(never).subject == "s"


def test_refusals(tmp_path):
    authority = TokenAuthority(KeyPair.load_or_create(tmp_path / "a"))
    other = TokenAuthority(KeyPair.load_or_create(tmp_path / "b"))
    _, foreign_signature = other.mint()
    with pytest.raises(AuthError, match="not signed by this instance") as info:
        authority.validate(foreign_signature)
    assert info.value.status == 401
    with pytest.raises(AuthError, match="malformed") as info:
        authority.validate("not.a.token")
    assert info.value.status == 400
    key = authority.keys.private_key
    wrong_issuer = jwt.encode({"sub": "x", "iss": "evil.example"}, key, algorithm="ES256")
    with pytest.raises(AuthError, match="foreign issuer"):
        authority.validate(wrong_issuer)
    lying = jwt.encode({"sub": "x", "iss": "localhost", "hex_identity": "00" * 32}, key, algorithm="ES256")
    with pytest.raises(AuthError, match="hex_identity"):
        authority.validate(lying)
    expired = jwt.encode({"sub": "x", "iss": "localhost", "exp": 1}, key, algorithm="ES256")
    with pytest.raises(AuthError, match="expired"):
        authority.validate(expired)
    hs = jwt.encode(
        {"sub": "x", "iss": "localhost"}, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256"
    )
    with pytest.raises(AuthError):
        authority.validate(hs)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
