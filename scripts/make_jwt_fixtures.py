#!/usr/bin/env python3
"""Make the JWT test fixtures under fixtures/jwt/ with PyJWT, an independent signer.

    target/test-venv/bin/python scripts/make_jwt_fixtures.py            # from the crate root

Writes:
  fixtures/jwt/rsa1.pem, rsa2.pem, ec1.pem   private test keys (PKCS#8 PEM) of the JWKS
  fixtures/jwt/attacker.pem                  an RSA key that is NOT in the JWKS
  fixtures/jwt/jwks.json                     the JWKS: two RSA-2048 keys, one P-256 key
  fixtures/jwt/tokens.json                   named tokens, each with the policy to check
                                             it against and the expected outcome

Deterministic enough: existing keys are reused (only missing keys are
generated), times are fixed, claims and headers are written in a fixed order.
RS256 signatures are deterministic; ES256 ones (random nonce) change on every
run, nothing else does.

The keys are TEST KEYS, published on purpose. Never trust them anywhere.
"""

import base64
import hashlib
import hmac
import json
import os
import sys

import jwt  # PyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "jwt")

IAT = 1767225600  # 2026-01-01T00:00:00Z
EXP = IAT + 3600
NOW = IAT + 600  # the instant the tests verify at

TENANT = "c0ffee00-1234-4abc-8def-0123456789ab"
OTHER_TENANT = "badbad00-0000-4000-8000-000000000bad"
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # Entra's consumer (MSA) tenant
V1_ISS = f"https://sts.windows.net/{TENANT}/"
V2_ISS = f"https://login.microsoftonline.com/{TENANT}/v2.0"
CLIENT_ID = "6e2f1b9a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"  # fedgate's app registration
API_AUD = f"api://{CLIENT_ID}"  # v1 access tokens name the App ID URI
CALLER_APP = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # a client calling fedgate's API
USER_OID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
APP_SP_OID = "5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"
GROUP_ADMINS = "b1c2d3e4-0000-4111-8222-333344445555"
GROUP_OPS = "c2d3e4f5-1111-4222-9333-444455556666"

KID_RSA1 = "fedgate-test-rsa-1"
KID_RSA2 = "fedgate-test-rsa-2-msa"
KID_EC1 = "fedgate-test-ec-1"


def load_or_make(path, make):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = make()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(path, "wb") as f:
        f.write(pem)
    return key


def rsa2048():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def p256():
    return ec.generate_private_key(ec.SECP256R1())


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def sign(claims, key, kid, alg="RS256", extra_headers=None):
    headers = {"typ": "JWT"}
    if kid is not None:
        headers["kid"] = kid
    if extra_headers:
        headers.update(extra_headers)
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def base_claims(**over):
    """Claims every token starts from: a v2 user access token for fedgate's API."""
    c = {
        "aud": CLIENT_ID,
        "iss": V2_ISS,
        "iat": IAT,
        "nbf": IAT,
        "exp": EXP,
        "aio": "AWQAm/8ZAAAAtest",
        "azp": CALLER_APP,
        "azpacr": "1",
        "name": "Ada Lovelace",
        "oid": USER_OID,
        "preferred_username": "ada@contoso.example",
        "email": "ada.lovelace@contoso.example",
        "rh": "0.AAAA-test.",
        "groups": [GROUP_ADMINS, GROUP_OPS],
        "roles": ["Backup.Operator"],
        "scp": "access_as_user",
        "sub": "k7Ue0wM9Y4pA1fTnEr3zq5vQxH2sB6cDyL8gNjKoZaI",
        "tid": TENANT,
        "uti": "v2-user-uti-0001",
        "ver": "2.0",
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def v1_claims(**over):
    c = {
        "aud": API_AUD,
        "iss": V1_ISS,
        "iat": IAT,
        "nbf": IAT,
        "exp": EXP,
        "acr": "1",
        "amr": ["pwd"],
        "appid": CALLER_APP,
        "appidacr": "1",
        "family_name": "Lovelace",
        "given_name": "Ada",
        "ipaddr": "192.0.2.10",
        "name": "Ada Lovelace",
        "oid": USER_OID,
        "groups": [GROUP_ADMINS],
        "scp": "user_impersonation",
        "sub": "v1SubjectAdaLovelace0000000000000000000000",
        "tid": TENANT,
        "unique_name": "ada@contoso.example",
        "upn": "ada@contoso.example",
        "uti": "v1-user-uti-0001",
        "ver": "1.0",
    }
    c.update(over)
    return c


def main():
    os.makedirs(OUT, exist_ok=True)
    rsa1 = load_or_make(os.path.join(OUT, "rsa1.pem"), rsa2048)
    rsa2 = load_or_make(os.path.join(OUT, "rsa2.pem"), rsa2048)
    ec1 = load_or_make(os.path.join(OUT, "ec1.pem"), p256)
    attacker = load_or_make(os.path.join(OUT, "attacker.pem"), rsa2048)

    # --- the JWKS (public halves, via PyJWT's own JWK export) ----------------
    def jwk(pub, alg_cls, **meta):
        d = alg_cls.to_jwk(pub, as_dict=True)
        out = dict(meta)
        out.update({k: d[k] for k in ("kty", "crv", "x", "y", "n", "e") if k in d})
        return out

    jwks = {
        "keys": [
            # Like Entra's common v2.0 JWKS: a per-key issuer template.
            jwk(rsa1.public_key(), RSAAlgorithm, kid=KID_RSA1, use="sig",
                issuer="https://login.microsoftonline.com/{tenantid}/v2.0"),
            # Like Entra's MSA-only keys: a per-key issuer naming one tenant.
            jwk(rsa2.public_key(), RSAAlgorithm, kid=KID_RSA2, use="sig",
                issuer=f"https://login.microsoftonline.com/{MSA_TENANT}/v2.0"),
            jwk(ec1.public_key(), ECAlgorithm, kid=KID_EC1, use="sig", alg="ES256"),
        ]
    }
    with open(os.path.join(OUT, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=2)
        f.write("\n")

    rsa1_pub_pem = rsa1.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    rsa1_n = rsa1.public_key().public_numbers().n
    rsa1_n_bytes = rsa1_n.to_bytes((rsa1_n.bit_length() + 7) // 8, "big")

    def hs256(header, claims, secret):
        signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64u(mac)}"

    v2 = {"issuer": V2_ISS, "audience": CLIENT_ID}
    v1 = {"issuer": V1_ISS, "audience": API_AUD}
    tokens = {}

    def add(name, token, policy, expect, why, algorithms=None):
        entry = {"jwt": token, "issuer": policy["issuer"], "audience": policy["audience"],
                 "expect": expect, "why": why}
        if algorithms:
            entry["algorithms"] = algorithms
        tokens[name] = entry

    # --- valid ----------------------------------------------------------------
    add("v1_user", sign(v1_claims(), rsa1, KID_RSA1), v1, "ok",
        "Entra v1.0 user access token (sts.windows.net issuer, appid, upn)")
    add("v2_user", sign(base_claims(), rsa1, KID_RSA1), v2, "ok",
        "Entra v2.0 user access token (azp, preferred_username, groups, roles)")
    add("v2_app_only",
        sign(base_claims(idtyp="app", roles=["Backup.Automation", "Backup.Read"],
                         scp=None, name=None, preferred_username=None, email=None,
                         groups=None, oid=APP_SP_OID, sub=APP_SP_OID,
                         uti="v2-app-uti-0001"), rsa1, KID_RSA1),
        v2, "ok", "client-credentials token: idtyp app, roles, no scp, oid == sub")
    add("v2_app_only_no_idtyp",
        sign(base_claims(roles=["Backup.Automation"], scp=None, name=None,
                         preferred_username=None, email=None, groups=None,
                         oid=APP_SP_OID, sub=APP_SP_OID, uti="v2-app-uti-0002"),
             rsa1, KID_RSA1),
        v2, "ok", "app-only without idtyp: roles, no scp, oid == sub")
    add("v2_mfa",
        sign(base_claims(amr=["pwd", "mfa"], auth_time=IAT - 120, uti="v2-mfa-uti-0001"),
             rsa1, KID_RSA1),
        v2, "ok", "amr pwd+mfa, auth_time two minutes before iat")
    add("v2_id_token_overage",
        sign(base_claims(groups=None, scp=None, azp=None, azpacr=None, nonce="n-fedgate-1",
                         _claim_names={"groups": "src1"},
                         _claim_sources={"src1": {"endpoint":
                             f"https://graph.microsoft.com/v1.0/users/{USER_OID}/getMemberObjects"}},
                         uti=None, jti="v2-idtoken-jti-0001"), rsa1, KID_RSA1),
        v2, "ok", "id token with _claim_names/_claim_sources groups overage")
    add("v2_hasgroups",
        sign(base_claims(groups=None, hasgroups=True), rsa1, KID_RSA1), v2, "ok",
        "implicit-flow overage marker hasgroups: true")
    add("v2_es256", sign(base_claims(), ec1, KID_EC1, alg="ES256"), v2, "ok",
        "ES256 with the P-256 key (policy allows ES256)", algorithms=["RS256", "ES256"])
    add("generic_issuer_es256",
        sign(base_claims(iss="https://idp.example.test", tid=None, ver=None), ec1, KID_EC1,
             alg="ES256"),
        {"issuer": "https://idp.example.test", "audience": CLIENT_ID}, "ok",
        "non-Entra issuer: no tid required, source jwt", algorithms=["ES256"])

    # --- algorithm and header attacks ------------------------------------------
    add("es256_not_allowed", sign(base_claims(), ec1, KID_EC1, alg="ES256"), v2,
        "jwt.alg_forbidden", "ES256 while the policy allows only RS256")
    add("alg_none",
        f"{b64u_json({'alg': 'none', 'kid': KID_RSA1, 'typ': 'JWT'})}.{b64u_json(base_claims())}.",
        v2, "jwt.alg_forbidden", "alg none, empty signature")
    add("hs256_public_pem",
        hs256({"alg": "HS256", "kid": KID_RSA1, "typ": "JWT"}, base_claims(), rsa1_pub_pem),
        v2, "jwt.alg_forbidden", "HS256 keyed with the RSA public key PEM (key confusion)")
    add("hs256_modulus",
        hs256({"alg": "HS256", "kid": KID_RSA1, "typ": "JWT"}, base_claims(), rsa1_n_bytes),
        v2, "jwt.alg_forbidden", "HS256 keyed with the RSA modulus bytes")
    add("rs256_with_ec_kid", sign(base_claims(), rsa1, KID_EC1), v2, "jwt.alg_forbidden",
        "RS256 header naming the EC key")
    add("kid_missing", sign(base_claims(), rsa1, None), v2, "jwt.kid_missing", "no kid header")
    add("kid_unknown", sign(base_claims(), attacker, "attacker-kid"), v2, "jwt.kid_unknown",
        "kid not in the JWKS")
    add("foreign_key_right_kid", sign(base_claims(), attacker, KID_RSA1), v2,
        "jwt.signature_invalid", "right kid, signed by a key not in the JWKS")
    attacker_jwk = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    add("jwk_header", sign(base_claims(), attacker, KID_RSA1, extra_headers={"jwk": attacker_jwk}),
        v2, "jwt.header_forbidden", "embedded attacker jwk header")
    add("jku_header",
        sign(base_claims(), attacker, KID_RSA1, extra_headers={"jku": "https://attacker.example/jwks"}),
        v2, "jwt.header_forbidden", "jku pointing at an attacker's JWKS")
    add("x5u_header",
        sign(base_claims(), attacker, KID_RSA1, extra_headers={"x5u": "https://attacker.example/c.pem"}),
        v2, "jwt.header_forbidden", "x5u pointing at an attacker's certificate")
    add("x5c_header",
        sign(base_claims(), rsa1, KID_RSA1, extra_headers={"x5c": ["MIIBAA=="]}),
        v2, "jwt.header_forbidden", "x5c chain in the header")
    add("crit_header",
        sign(base_claims(), rsa1, KID_RSA1, extra_headers={"crit": ["exp"]}),
        v2, "jwt.crit_unsupported", "crit header (validly signed)")

    # --- claim checks (all validly signed) ------------------------------------
    add("expired", sign(base_claims(iat=IAT - 7200, nbf=IAT - 7200, exp=IAT - 3600), rsa1, KID_RSA1),
        v2, "jwt.expired", "exp an hour and ten minutes before now")
    add("not_yet_valid",
        sign(base_claims(iat=IAT, nbf=IAT + 3600, exp=IAT + 7200), rsa1, KID_RSA1),
        v2, "jwt.not_yet_valid", "nbf 50 minutes after now")
    add("iat_in_future",
        sign(base_claims(iat=IAT + 3600, nbf=None, exp=IAT + 7200), rsa1, KID_RSA1),
        v2, "jwt.not_yet_valid", "iat 50 minutes after now, no nbf")
    add("exp_missing", sign(base_claims(exp=None), rsa1, KID_RSA1), v2, "jwt.exp_missing",
        "no exp claim")
    add("wrong_issuer",
        sign(base_claims(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
                         tid=OTHER_TENANT), rsa1, KID_RSA1),
        v2, "jwt.issuer_mismatch", "another tenant's token")
    add("wrong_audience", sign(base_claims(aud="api://some-other-api"), rsa1, KID_RSA1), v2,
        "jwt.audience_mismatch", "token for another API")
    add("wrong_audience_array",
        sign(base_claims(aud=["api://a", "api://b"]), rsa1, KID_RSA1), v2,
        "jwt.audience_mismatch", "aud array without fedgate")
    add("audience_array_ok",
        sign(base_claims(aud=["api://a", CLIENT_ID]), rsa1, KID_RSA1), v2, "ok",
        "aud array containing fedgate")
    add("wrong_tid", sign(base_claims(tid=OTHER_TENANT), rsa1, KID_RSA1), v2, "jwt.tid_mismatch",
        "iss names the tenant, tid another one")
    add("tid_missing", sign(base_claims(tid=None), rsa1, KID_RSA1), v2, "jwt.tid_mismatch",
        "Entra issuer without tid")
    add("msa_key_for_tenant", sign(base_claims(), rsa2, KID_RSA2), v2, "jwt.issuer_mismatch",
        "signed with a key whose per-key issuer is the MSA tenant")
    add("entra_key_for_generic_issuer",
        sign(base_claims(iss="https://idp.example.test", tid=None, ver=None), rsa1, KID_RSA1),
        {"issuer": "https://idp.example.test", "audience": CLIENT_ID}, "jwt.issuer_mismatch",
        "a key scoped to Entra issuers vouching for another issuer")
    add("groups_not_array", sign(base_claims(groups="admins"), rsa1, KID_RSA1), v2,
        "jwt.claim_invalid", "groups is a string")
    add("roles_not_strings", sign(base_claims(roles=[1, 2]), rsa1, KID_RSA1), v2,
        "jwt.claim_invalid", "roles holds numbers")
    add("exp_string", sign(base_claims(exp=str(EXP)), rsa1, KID_RSA1), v2, "jwt.claim_invalid",
        "exp as a string")
    add("sub_missing", sign(base_claims(sub=None), rsa1, KID_RSA1), v2, "jwt.claim_invalid",
        "no sub claim")

    doc = {
        "_comment": "Made by scripts/make_jwt_fixtures.py with PyJWT %s. Test keys only." % jwt.__version__,
        "now": NOW,
        "iat": IAT,
        "tenant": TENANT,
        "tokens": tokens,
    }
    with open(os.path.join(OUT, "tokens.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    # Self-check with PyJWT: every "ok" token verifies with the JWKS key named by its kid.
    keys = {k["kid"]: k for k in jwks["keys"]}
    for name, t in tokens.items():
        if t["expect"] != "ok":
            continue
        header = jwt.get_unverified_header(t["jwt"])
        key = jwt.PyJWK(keys[header["kid"]]).key
        jwt.decode(t["jwt"], key, algorithms=[header["alg"]], audience=t["audience"],
                   issuer=t["issuer"], leeway=0,
                   options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    print(f"wrote {len(tokens)} tokens to {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
