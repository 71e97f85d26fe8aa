#!/usr/bin/env python3
"""An independent OpenID Connect relying party (Authlib) that signs in at
fedgate's OpenID provider, for fedgate's tests.

    independent_rp.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI [LOGIN_HINT]

Discovery, authorization code flow with PKCE (S256) and a nonce, the code
redeemed with client_secret_basic, the ID token verified by Authlib's JOSE
(signature against the provider's JWKS, iss, aud, exp, nonce), then
userinfo. The browser is a `requests` session that follows redirects until
the provider sends it to REDIRECT_URI (nothing listens there: the RP reads
the code from that redirect). Prints one JSON object: the verified ID-token
claims and the userinfo answer, or {"error": ...} with exit code 1.
"""
import json
import secrets
import sys
from urllib.parse import urljoin

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def main():
    issuer, client_id, secret, redirect_uri = sys.argv[1:5]
    login_hint = sys.argv[5] if len(sys.argv) > 5 else None
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    if meta["issuer"] != issuer:
        raise SystemExit(json.dumps({"error": "issuer mismatch in discovery"}))
    client = OAuth2Session(
        client_id,
        secret,
        scope="openid profile email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    extra = {"login_hint": login_hint} if login_hint else {}
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier, **extra
    )
    browser = requests.Session()
    for _ in range(15):
        r = browser.get(url, allow_redirects=False, timeout=10)
        if r.status_code not in (301, 302, 303, 307, 308):
            print(json.dumps({"error": "stopped", "status": r.status_code, "url": url, "body": r.text[:500]}))
            return 1
        url = urljoin(url, r.headers["Location"])
        if url.startswith(redirect_uri):
            break
    else:
        print(json.dumps({"error": "too many redirects"}))
        return 1
    if "error=" in url:
        print(json.dumps({"error": "authorization refused", "redirect": url}))
        return 1
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=url, code_verifier=verifier, state=state
    )
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        claims_params={"nonce": nonce, "client_id": client_id},
    )
    claims.validate(leeway=60)
    userinfo = client.get(meta["userinfo_endpoint"], timeout=10).json()
    print(json.dumps({"id_token": dict(claims), "userinfo": userinfo, "alg": claims.header["alg"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
