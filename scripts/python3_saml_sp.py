#!/usr/bin/env python3
"""A console's SAML service provider built on python3-saml (OneLogin), in
strict mode, as an independent peer for fedgate's IdP: it starts
SP-initiated logins (AuthnRequests, HTTP-Redirect or HTTP-POST, signed or
not) and checks the Response fedgate posts back.

Usage (SETTINGS is a JSON file, see below):
    python scripts/python3_saml_sp.py login SETTINGS [--relay R] [--force]
        [--passive] [--nameid N] [--post]
    python scripts/python3_saml_sp.py acs SETTINGS --request-id ID
        --response FILE [--relay R]

SETTINGS: {"sp_entity_id", "acs_url", "sp_cert", "sp_key" (PEM, for signed
requests), "idp_entity_id", "sso_url", "idp_cert" (PEM), "sign_requests"
(bool), "want_messages_signed" (bool), "authn_context" (false, true, or a
list of class references), "comparison" (default "exact"), "defaults"
(bool: leave what must be signed, the algorithms and the authentication
context to python3-saml's own defaults, as a console set up by its docs),
"want_assertions_encrypted" (bool: the Assertion must arrive encrypted for
sp_key, which python3-saml then decrypts)}.

`login` prints {"url": the redirect (HTTP-Redirect), or "saml_request" and
"relay_state" (HTTP-POST, --post), "id": the request's ID}. `acs` prints
{"ok": true, "nameid", "attributes", "in_response_to", "relay_state"} and
exits 0, or {"ok": false, "errors", "reason"} and exits 1. python3-saml's
strict mode checks the signature with the IdP certificate, the issuer,
audience, Destination and Recipient (against the ACS URL), InResponseTo
against the request id, and the time window against the real clock.
"""
import argparse
import base64
import json
import sys
from urllib.parse import urlparse


def settings_for(s):
    from onelogin.saml2.constants import OneLogin_Saml2_Constants as C

    security = {
        "authnRequestsSigned": bool(s.get("sign_requests")),
        "wantAssertionsSigned": True,
        "wantMessagesSigned": bool(s.get("want_messages_signed")),
        "signatureAlgorithm": C.RSA_SHA256,
        "digestAlgorithm": C.SHA256,
        "requestedAuthnContext": s.get("authn_context", False),
        "requestedAuthnContextComparison": s.get("comparison", "exact"),
        "rejectDeprecatedAlgorithm": True,
        "wantAssertionsEncrypted": bool(s.get("want_assertions_encrypted")),
    }
    if s.get("defaults"):
        security = {"authnRequestsSigned": bool(s.get("sign_requests"))}
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": s["sp_entity_id"],
            "assertionConsumerService": {
                "url": s["acs_url"],
                "binding": C.BINDING_HTTP_POST,
            },
            "NameIDFormat": C.NAMEID_UNSPECIFIED,
            "x509cert": s.get("sp_cert", ""),
            "privateKey": s.get("sp_key", ""),
        },
        "idp": {
            "entityId": s["idp_entity_id"],
            "singleSignOnService": {
                "url": s["sso_url"],
                "binding": C.BINDING_HTTP_REDIRECT,
            },
            "x509cert": s["idp_cert"],
        },
        "security": security,
    }


def request_data(url, post=None):
    u = urlparse(url)
    return {
        "https": "on" if u.scheme == "https" else "off",
        "http_host": u.hostname,
        "server_port": str(u.port or (443 if u.scheme == "https" else 80)),
        "script_name": u.path,
        "get_data": {},
        "post_data": post or {},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["login", "acs"])
    ap.add_argument("settings")
    ap.add_argument("--relay")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--passive", action="store_true")
    ap.add_argument("--nameid")
    ap.add_argument("--post", action="store_true")
    ap.add_argument("--request-id")
    ap.add_argument("--response")
    a = ap.parse_args()

    from onelogin.saml2.auth import OneLogin_Saml2_Auth
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.settings import OneLogin_Saml2_Settings
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    s = json.load(open(a.settings))
    settings = settings_for(s)
    if a.command == "login" and a.post:
        # The HTTP-POST binding: the request XML, enveloped-signed by
        # python3-saml's own signer (xmlsec) when asked, base64 in a form.
        conf = OneLogin_Saml2_Settings(settings, sp_validation_only=True)
        req = OneLogin_Saml2_Authn_Request(
            conf, force_authn=a.force, is_passive=a.passive, name_id_value_req=a.nameid
        )
        xml = req.get_xml()
        if s.get("sign_requests"):
            xml = OneLogin_Saml2_Utils.add_sign(xml, s["sp_key"], s["sp_cert"])
        if isinstance(xml, str):
            xml = xml.encode()
        print(
            json.dumps(
                {
                    "saml_request": base64.b64encode(xml).decode(),
                    "relay_state": a.relay,
                    "id": req.get_id(),
                }
            )
        )
        return 0
    if a.command == "login":
        auth = OneLogin_Saml2_Auth(request_data(s["acs_url"]), old_settings=settings)
        url = auth.login(
            return_to=a.relay,
            force_authn=a.force,
            is_passive=a.passive,
            name_id_value_req=a.nameid,
        )
        print(json.dumps({"url": url, "id": auth.get_last_request_id()}))
        return 0
    form = {"SAMLResponse": open(a.response).read().strip()}
    if a.relay is not None:
        form["RelayState"] = a.relay
    auth = OneLogin_Saml2_Auth(request_data(s["acs_url"], form), old_settings=settings)
    try:
        auth.process_response(request_id=a.request_id)
    except Exception as e:  # noqa: BLE001 - reported to the test as JSON
        print(json.dumps({"ok": False, "errors": ["exception"], "reason": str(e)}))
        return 1
    errors = auth.get_errors()
    if errors or not auth.is_authenticated():
        print(
            json.dumps(
                {"ok": False, "errors": errors, "reason": auth.get_last_error_reason()}
            )
        )
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "nameid": auth.get_nameid(),
                "attributes": auth.get_attributes(),
                "authn_contexts": auth.get_last_authn_contexts(),
                "relay_state": form.get("RelayState"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
