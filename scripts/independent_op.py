#!/usr/bin/env python3
"""An independent OpenID provider (Authlib's authorization server on Flask),
for fedgate's relying-party tests.

    independent_op.py CLIENT_ID CLIENT_SECRET KEY_PEM TENANT_ID

Serves on a free 127.0.0.1 port and prints `listening <port>` once ready.
The authorization code flow with PKCE required (Authlib's CodeChallenge),
OpenID Connect (Authlib's OpenIDCode: ID token with nonce, signed RS256 with
KEY_PEM), client_secret_post or client_secret_basic. One scripted user per
`login_hint` (the user signs in at once). Redirect URIs of the form
http://127.0.0.1:<port>/oidc/<tenant>/callback are accepted (fedgate's port
is not known when this starts). Runs until killed.
"""
import socket
import sys
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.jose import JsonWebKey
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from flask import Flask, jsonify, request

CLIENT_ID, CLIENT_SECRET, KEY_PEM, TENANT_ID = sys.argv[1:5]
KEY = JsonWebKey.import_key(open(KEY_PEM).read(), {"kty": "RSA", "kid": "independent-op-1", "use": "sig"})
USERS = {
    "alice@contoso.example": {
        "oid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "name": "Alice (from the independent OP)",
        "groups": ["5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b"],
    },
    "mallory@contoso.example": {
        "oid": "11111111-2222-4333-8444-555555555555",
        "name": "Mallory",
        "groups": [],
    },
}

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
PORT = sock.getsockname()[1]
sock.close()
ISSUER = f"http://127.0.0.1:{PORT}"

app = Flask(__name__)
CODES = {}


class User:
    def __init__(self, upn):
        self.upn = upn
        self.info = USERS[upn]

    def get_user_id(self):
        return self.info["oid"]


class Client:
    client_id = CLIENT_ID

    def get_client_id(self):
        return CLIENT_ID

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, uri):
        return uri.startswith("http://127.0.0.1:") and "/oidc/" in uri and uri.endswith("/callback")

    def check_client_secret(self, secret):
        return secret == CLIENT_SECRET

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class Code(dict):
    @property
    def code_challenge(self):
        return self.get("code_challenge")

    @property
    def code_challenge_method(self):
        return self.get("code_challenge_method")

    def get_redirect_uri(self):
        return self["redirect_uri"]

    def get_scope(self):
        return self["scope"]

    def get_nonce(self):
        return self.get("nonce")

    def get_auth_time(self):
        return self["auth_time"]

    def get_acr(self):
        return None

    def get_amr(self):
        return ["pwd", "mfa"]

    def is_expired(self):
        return time.time() > self["auth_time"] + 60


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, req):
        CODES[code] = Code(
            redirect_uri=req.payload.redirect_uri,
            scope=req.payload.scope,
            nonce=req.payload.data.get("nonce"),
            auth_time=int(time.time()),
            user=req.user.upn,
            code_challenge=req.payload.data.get("code_challenge"),
            code_challenge_method=req.payload.data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code, client):
        found = CODES.get(code)
        if found is not None:
            found["_code"] = code  # to delete it once redeemed
        return found

    def delete_authorization_code(self, code):
        CODES.pop(code["_code"], None)

    def authenticate_user(self, code):
        return User(code["user"])


class OpenIDCode(_OpenIDCode):
    def exists_nonce(self, nonce, req):
        return any(c.get("nonce") == nonce for c in CODES.values())

    def get_jwt_config(self, grant):
        # fedgate requires a kid in every token header (Entra always sends one).
        return {"key": KEY, "alg": "RS256", "iss": ISSUER, "exp": 3600, "kid": "independent-op-1"}

    def generate_user_info(self, user, scope):
        return UserInfo(
            sub=user.info["oid"],
            name=user.info["name"],
            email=user.upn,
            preferred_username=user.upn,
            oid=user.info["oid"],
            tid=TENANT_ID,
            groups=user.info["groups"],
        )


def query_client(client_id):
    return Client() if client_id == CLIENT_ID else None


def save_token(token, req):
    pass


server = AuthorizationServer(app, query_client=query_client, save_token=save_token)


server.register_grant(AuthorizationCodeGrant, [OpenIDCode(require_nonce=True), CodeChallenge(required=True)])


@app.route("/.well-known/openid-configuration")
def discovery():
    return jsonify(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        response_types_supported=["code"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256"],
        token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
        code_challenge_methods_supported=["S256"],
    )


@app.route("/jwks")
def jwks():
    return jsonify(keys=[KEY.as_dict(is_private=False)])


@app.route("/authorize")
def authorize():
    upn = request.args.get("login_hint", "alice@contoso.example")
    if upn not in USERS:
        # The user does not exist here: access_denied back to the client.
        return server.create_authorization_response(grant_user=None)
    return server.create_authorization_response(grant_user=User(upn))


@app.route("/token", methods=["POST"])
def token():
    return server.create_token_response()


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import os

    print(f"listening {PORT}", flush=True)
    # The test reads one line and closes the pipe: nothing more goes there.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")
    app.run(host="127.0.0.1", port=PORT, threaded=True)
