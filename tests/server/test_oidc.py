"""Tokens of OpenID Connect issuers (``--oidc-issuer``), checked against a small issuer the test runs on loopback:
RS256 and ES256 tokens get the identity SpacetimeDB derives from (issuer, subject); unknown issuers, bad
signatures, ``alg: none``, expired tokens and wrong audiences get 401 with the reason; rotated keys are picked up
and the refresh is rate-limited; a hanging or bloated issuer costs a bounded wait and harms no other issuer.
In-process here (``TokenAuthority.authenticate``); over HTTP and WebSocket in test_oidc_e2e.py."""

import asyncio
import time

import blake3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from spacetimedb.sats import Identity
from spacetimedb.server.auth import AuthError, KeyPair, TokenAuthority
from spacetimedb.server.oidc import FetchLimits, OidcIssuer, OidcKeys

from .oidc_issuer import DEEP, HANG, HUGE, TestIssuer, new_key


def upstream_identity(issuer: str, subject: str) -> Identity:
    """SpacetimeDB's Identity::from_claims, written out: c2 00, a 4-byte checksum, 26 bytes of blake3(iss|sub)."""
    body = blake3.blake3(f"{issuer}|{subject}".encode()).digest()[:26]
    return Identity.from_be_bytes(b"\xc2\x00" + blake3.blake3(b"\xc2\x00" + body).digest()[:4] + body)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authority(*issuers: OidcIssuer, clock=time.monotonic, **limits) -> TokenAuthority:
    return TokenAuthority(KeyPair.ephemeral(), oidc=OidcKeys(issuers, FetchLimits(**limits), clock))


def run(auth: TokenAuthority, scenario):
    """Run ``scenario()`` on a fresh event loop, closing the authority's HTTP client afterwards."""

    async def closing():
        try:
            return await scenario()
        finally:
            await auth.oidc.close()

    return asyncio.run(closing())


def authenticate(auth: TokenAuthority, token: str):
    return run(auth, lambda: auth.authenticate(token))


def refused(auth: TokenAuthority, token: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason) as info:
        authenticate(auth, token)
    assert info.value.status == 401


@pytest.fixture
def issuer():
    with TestIssuer(path="/realms/test") as running:
        yield running


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_good_token_gets_upstreams_identity_and_its_claims(issuer, algorithm):
    kid = issuer.add_key(algorithm)
    auth = authority(OidcIssuer(issuer.url))
    token = issuer.token(kid, subject="alice@example", email="alice@example.com")
    claims = authenticate(auth, token)
    assert claims.identity == upstream_identity(issuer.url, "alice@example")
    assert (claims.issuer, claims.subject, claims.audience) == (issuer.url, "alice@example", ("web-chat",))
    assert claims.extra == {"email": "alice@example.com"} and claims.expires_at > time.time()


def test_the_configured_audience_is_required(issuer):
    kid = issuer.add_key("RS256")
    auth = authority(OidcIssuer.parse(f"{issuer.url}#web-chat"))
    assert authenticate(auth, issuer.token(kid, audience=["other", "web-chat"])).subject == "user-1"
    refused(auth, issuer.token(kid, audience="another-app"), "audience .* does not include 'web-chat'")
    refused(auth, issuer.token(kid, audience=None), "audience")


def test_refusals_say_why(issuer):
    kid = issuer.add_key("ES256")
    auth = authority(OidcIssuer(issuer.url))
    with TestIssuer() as stranger:
        stranger_kid = stranger.add_key("ES256")
        refused(auth, stranger.token(stranger_kid), "unknown issuer")
        assert stranger.hits == {"discovery": 0, "jwks": 0}  # an untrusted issuer is never contacted
    forged = issuer.token(kid, key=new_key("ES256"))  # its kid, another key
    refused(auth, forged, "bad signature")
    unsigned = jwt.encode({"iss": issuer.url, "sub": "x"}, None, algorithm="none")
    refused(auth, unsigned, "unsupported algorithm 'none'")
    refused(auth, issuer.token(kid, lifetime=-120), "expired")
    # HS256 with the issuer's public key as the secret: the classic algorithm confusion
    public_pem = issuer.jwks()["keys"][0]
    confused = jwt.encode({"iss": issuer.url, "sub": "x"}, str(public_pem).encode() * 2, algorithm="HS256")
    refused(auth, confused, "unsupported algorithm 'HS256'")
    lying = issuer.token(kid, hex_identity="00" * 32)
    refused(auth, lying, "hex_identity")


def test_an_issuers_clock_skew_is_tolerated_for_a_minute(issuer):
    kid = issuer.add_key("ES256")
    auth = authority(OidcIssuer(issuer.url))
    assert authenticate(auth, issuer.token(kid, lifetime=-20)).subject == "user-1"
    refused(authority(OidcIssuer(issuer.url)), issuer.token(kid, lifetime=-90), "expired")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test issuer signs with it
def test_weak_and_unusable_jwks_entries_are_skipped(issuer):
    weak = issuer.add_key("RS256", "weak", key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    good = issuer.add_key("ES256")
    issuer.junk = [
        "not an object",
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]
    auth = authority(OidcIssuer(issuer.url))
    refused(auth, issuer.token(weak), "no RS256 key id 'weak'")
    assert authenticate(authority(OidcIssuer(issuer.url)), issuer.token(good)).subject == "user-1"


def test_rotated_keys_are_picked_up_and_refreshes_are_rate_limited(issuer):
    first = issuer.add_key("RS256")
    clock = FakeClock()
    auth = authority(OidcIssuer(issuer.url), clock=clock, refresh_seconds=30)

    async def scenario():
        assert (await auth.authenticate(issuer.token(first))).subject == "user-1"
        assert issuer.hits == {"discovery": 1, "jwks": 1}
        assert (await auth.authenticate(issuer.token(first, subject="bob"))).subject == "bob"
        assert issuer.hits["jwks"] == 1  # cached
        second = issuer.rotate("ES256")
        clock.now += 31
        rotated = await auth.authenticate(issuer.token(second, subject="carol"))
        assert rotated.identity == upstream_identity(issuer.url, "carol")
        assert issuer.hits["jwks"] == 2
        # a flood of made-up key ids within the refresh interval: one fetch at most
        third = issuer.rotate("RS256")
        clock.now += 1
        for n in range(20):
            with pytest.raises(AuthError, match=r"no RS256 key id .* fetched again at most every 30 s"):
                await auth.authenticate(issuer.token(third, subject=f"x{n}"))
        assert issuer.hits["jwks"] == 2
        clock.now += 30
        assert (await auth.authenticate(issuer.token(third))).subject == "user-1"
        assert issuer.hits["jwks"] == 3

    run(auth, scenario)


def test_cached_keys_outlive_an_issuer_that_fails_later(issuer):
    kid = issuer.add_key("ES256")
    clock = FakeClock()
    auth = authority(OidcIssuer(issuer.url), clock=clock, refresh_seconds=30, max_bytes=4096)

    async def scenario():
        assert (await auth.authenticate(issuer.token(kid))).subject == "user-1"
        issuer.misbehaviour = HUGE
        clock.now += 31
        unknown = issuer.add_key("ES256")
        with pytest.raises(AuthError, match=r"fetching them again failed: .* larger than 4096 bytes"):
            await auth.authenticate(issuer.token(unknown))
        # the keys it had still count, even past their age, while the issuer cannot give new ones
        clock.now += 7200
        assert (await auth.authenticate(issuer.token(kid, subject="later"))).subject == "later"
        assert issuer.hits["jwks"] == 3

    run(auth, scenario)


def test_concurrent_tokens_share_one_fetch(issuer):
    kid = issuer.add_key("ES256")
    auth = authority(OidcIssuer(issuer.url))

    async def scenario():
        tokens = [issuer.token(kid, subject=f"user-{n}") for n in range(10)]
        found = await asyncio.gather(*(auth.authenticate(t) for t in tokens))
        assert sorted(c.subject for c in found) == sorted(f"user-{n}" for n in range(10))

    run(auth, scenario)
    assert issuer.hits == {"discovery": 1, "jwks": 1}


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [(HANG, "no answer within 1.5 s"), (HUGE, "larger than"), (DEEP, "maximum recursion depth")],
)
def test_a_hostile_issuer_costs_a_bounded_wait_and_harms_no_other(issuer, misbehaviour, reason):
    good_kid = issuer.add_key("RS256")
    with TestIssuer() as hostile:
        hostile_kid = hostile.add_key("ES256")
        hostile.misbehaviour = misbehaviour
        auth = authority(
            OidcIssuer(issuer.url), OidcIssuer(hostile.url), timeout_seconds=1.5, max_bytes=256 << 10
        )

        async def scenario():
            started = time.monotonic()
            hostile_try = asyncio.ensure_future(auth.authenticate(hostile.token(hostile_kid)))
            neighbour = await auth.authenticate(issuer.token(good_kid, subject="neighbour"))
            assert neighbour.subject == "neighbour"
            with pytest.raises(AuthError, match=f"could not fetch the keys of issuer .*{reason}"):
                await hostile_try
            assert time.monotonic() - started < 8
            # refused again without asking it (the refresh is rate-limited)
            with pytest.raises(AuthError, match="could not fetch"):
                await auth.authenticate(hostile.token(hostile_kid))

        run(auth, scenario)
        assert hostile.hits["discovery"] == 1


@pytest.mark.parametrize(
    "text", ["auth.example", "ftp://auth.example", "https://auth.example/?tenant=1", "https:///path"]
)
def test_bad_issuer_urls_are_refused(text):
    with pytest.raises(ValueError, match="--oidc-issuer"):
        OidcIssuer.parse(text)


def test_issuer_url_and_audience_parse():
    assert OidcIssuer.parse("https://auth.example/") == OidcIssuer("https://auth.example/")
    assert OidcIssuer.parse("https://auth.example#my-app") == OidcIssuer("https://auth.example", "my-app")
    assert OidcIssuer.parse("https://auth.example/").key == "https://auth.example"
