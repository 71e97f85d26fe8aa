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
    python scripts/python3_saml_sp.py logout SETTINGS --nameid N
        [--nameid-format F] [--session-index S] [--relay R]
    python scripts/python3_saml_sp.py sls SETTINGS --url URL [--request-id ID]
    python scripts/python3_saml_sp.py serve SETTINGS --log FILE
        [--hang-seconds N]

SETTINGS: {"sp_entity_id", "acs_url", "sp_cert", "sp_key" (PEM, for signed
requests), "idp_entity_id", "sso_url", "idp_cert" (PEM), "sign_requests"
(bool), "want_messages_signed" (bool), "authn_context" (false, true, or a
list of class references), "comparison" (default "exact"), "defaults"
(bool: leave what must be signed, the algorithms and the authentication
context to python3-saml's own defaults, as a console set up by its docs),
"want_assertions_encrypted" (bool: the Assertion must arrive encrypted for
sp_key, which python3-saml then decrypts), and for Single Logout "slo_url"
(the IdP's SingleLogoutService, fedgate's /idp/slo, HTTP-Redirect), "sls_url"
(this SP's own SingleLogoutService, HTTP-Redirect), "sign_logout" (bool: the
LogoutRequests and LogoutResponses this SP sends are signed with sp_key,
RSA-SHA256); want_messages_signed also makes python3-saml require a
signature on the LogoutRequests and LogoutResponses it receives}.

`login` prints {"url": the redirect (HTTP-Redirect), or "saml_request" and
"relay_state" (HTTP-POST, --post), "id": the request's ID}. `acs` prints
{"ok": true, "nameid", "attributes", "authn_contexts", "relay_state"} and
exits 0, or {"ok": false, "errors", "reason"} and exits 1. python3-saml's
strict mode checks the signature with the IdP certificate, the issuer,
audience, Destination and Recipient (against the ACS URL), InResponseTo
against the request id, and the time window against the real clock.

`logout` starts an SP-initiated logout and prints {"url": the HTTP-Redirect
to slo_url carrying the LogoutRequest (signed when sign_logout), "id": the
LogoutRequest's ID}; without --relay python3-saml puts its own URL (sls_url,
else acs_url) in RelayState. `sls` checks the LogoutResponse in the query of
URL (where the IdP sent the browser, which must be sls_url) and prints
{"ok": true, "status", "in_response_to", "relay_state"} and exits 0, or
{"ok": false, "errors", "reason", "status"} and exits 1. Both `sls` and
`serve` hand python3-saml the raw query string, so the HTTP-Redirect
signature is checked (with idp_cert) over the octets as received; strict
mode checks the issuer, Destination (against sls_url), InResponseTo against
--request-id and, for a LogoutRequest, NotOnOrAfter.

`serve` listens on 127.0.0.1 (sls_url's port, or one chosen by the OS), prints one line
{"port": P}, and stops by itself after 300 seconds. It answers the
IdP-initiated, server-to-server `GET <path of sls_url>?SAMLRequest=...`:
302 to the LogoutResponse for slo_url (signed when sign_logout), appending
{"ok": true, "nameid", "session_indexes", "request_id"} to FILE, or 400,
appending {"ok": false, "errors", "reason"}; any other path is 404.
--hang-seconds N waits N seconds before answering anything.
"""
import argparse
import base64
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse


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
    if s.get("sign_logout"):
        security["logoutRequestSigned"] = True
        security["logoutResponseSigned"] = True
        security["signatureAlgorithm"] = C.RSA_SHA256
    settings = {
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
    if s.get("slo_url"):
        settings["idp"]["singleLogoutService"] = {
            "url": s["slo_url"],
            "binding": C.BINDING_HTTP_REDIRECT,
        }
    if s.get("sls_url"):
        settings["sp"]["singleLogoutService"] = {
            "url": s["sls_url"],
            "binding": C.BINDING_HTTP_REDIRECT,
        }
    return settings


def request_data(url, post=None, query=None):
    """The request as python3-saml wants it, as received at `url`. `query`
    is a raw query string (HTTP-Redirect binding): python3-saml gets both
    the decoded parameters (the first of each, as Flask's request.args) and
    the string itself, so that it checks the signature over the octets as
    received rather than over its own re-encoding of them."""
    u = urlparse(url)
    data = {
        "https": "on" if u.scheme == "https" else "off",
        "http_host": u.hostname,
        "server_port": str(u.port or (443 if u.scheme == "https" else 80)),
        "script_name": u.path,
        "get_data": {},
        "post_data": post or {},
    }
    if query is not None:
        parsed = parse_qs(query, keep_blank_values=True)
        data["get_data"] = {k: v[0] for k, v in parsed.items()}
        data["query_string"] = query
        data["validate_signature_from_qs"] = True
    return data


def slo_auth(settings, url, query):
    """An OneLogin_Saml2_Auth for an SLO message received at `url`, which
    also keeps the LogoutRequest / LogoutResponse objects python3-saml
    itself parses and checks (process_slo drops their error reasons)."""
    from onelogin.saml2.auth import OneLogin_Saml2_Auth
    from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
    from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response

    seen = {}

    class Request(OneLogin_Saml2_Logout_Request):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.setdefault("request", self)

    class Response(OneLogin_Saml2_Logout_Response):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.setdefault("response", self)

    data = request_data(url, query=query)
    auth = OneLogin_Saml2_Auth(data, old_settings=settings)
    auth.logout_request_class = Request
    auth.logout_response_class = Response
    return auth, seen, data["get_data"]


def slo_failure(auth, seen, key, errors=None):
    reason = auth.get_last_error_reason()
    if reason is None and key in seen:
        reason = seen[key].get_error()
    return {"ok": False, "errors": errors or auth.get_errors(), "reason": reason}


def same_endpoint(a, b):
    def norm(url):
        u = urlparse(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        return (u.scheme.lower(), (u.hostname or "").lower(), port, u.path or "/")

    return norm(a) == norm(b)


def sls(s, settings, url, request_id):
    """The browser arrives at the SLS with the IdP's LogoutResponse."""
    query = urlparse(url).query
    here = s.get("sls_url") or url
    if not same_endpoint(url, here):
        return {
            "ok": False,
            "errors": ["wrong_endpoint"],
            "reason": "sent to %s, not to sls_url %s" % (url.split("?")[0], here),
        }, 1
    auth, seen, params = slo_auth(settings, here, query)
    if "SAMLResponse" not in params:
        return {"ok": False, "errors": ["no_saml_response"], "reason": url}, 1
    try:
        auth.process_slo(keep_local_session=True, request_id=request_id)
    except Exception as e:  # noqa: BLE001 - reported to the test as JSON
        return {"ok": False, "errors": ["exception"], "reason": str(e)}, 1
    response = seen.get("response")
    status = response.get_status() if response is not None else None
    if auth.get_errors():
        out = slo_failure(auth, seen, "response")
        out["status"] = status
        return out, 1
    return {
        "ok": True,
        "status": status,
        "in_response_to": response.get_in_response_to(),
        "relay_state": params.get("RelayState"),
    }, 0


def idp_logout_request(s, settings, query):
    """An IdP-initiated LogoutRequest, received server to server at the
    SLS: returns (the LogoutResponse redirect or None, the log entry)."""
    from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request

    auth, seen, params = slo_auth(settings, s["sls_url"], query)
    if "SAMLRequest" not in params:
        return None, {"ok": False, "errors": ["no_saml_request"], "reason": query}
    try:
        location = auth.process_slo(keep_local_session=True)
        if auth.get_errors():
            return None, slo_failure(auth, seen, "request")
        xml = auth.get_last_request_xml()
        entry = {
            "ok": True,
            "nameid": OneLogin_Saml2_Logout_Request.get_nameid(xml, s.get("sp_key")),
            "session_indexes": OneLogin_Saml2_Logout_Request.get_session_indexes(xml),
            "request_id": OneLogin_Saml2_Logout_Request.get_id(xml),
        }
    except Exception as e:  # noqa: BLE001 - reported to the test as JSON
        return None, {"ok": False, "errors": ["exception"], "reason": str(e)}
    return location, entry


def serve(s, settings, log, hang_seconds, lifetime=300):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sls_path = urlparse(s["sls_url"]).path if s.get("sls_url") else None
    lock = threading.Lock()

    def append(entry):
        with lock, open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()

    class Handler(BaseHTTPRequestHandler):
        def answer(self, code, body=b"", headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if hang_seconds:
                time.sleep(hang_seconds)
            path, _, query = self.path.partition("?")
            if sls_path is None or path != sls_path:
                self.answer(404, b"not found\n")
                return
            try:
                location, entry = idp_logout_request(s, settings, query)
            except Exception as e:  # noqa: BLE001 - still answer, and log it
                location, entry = None, {
                    "ok": False,
                    "errors": ["exception"],
                    "reason": str(e),
                }
            append(entry)
            if entry["ok"] and location:
                self.answer(302, headers=[("Location", location)])
            else:
                text = "logout rejected: %s: %s\n" % (
                    ", ".join(map(str, entry.get("errors") or [])),
                    entry.get("reason"),
                )
                self.answer(400, text.encode())

        def do_POST(self):
            if hang_seconds:
                time.sleep(hang_seconds)
            path = self.path.partition("?")[0]
            if sls_path is not None and path == sls_path:
                self.answer(405, b"only the HTTP-Redirect binding\n")
            else:
                self.answer(404, b"not found\n")

        def log_message(self, format, *args):
            pass  # a test peer: what matters goes to the log file

    # The port of sls_url when it names one (the test picked it free, and
    # fedgate's logout_url says so), else one the OS chooses.
    port = urlparse(s["sls_url"]).port or 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    time.sleep(lifetime)
    server.shutdown()
    server.server_close()
    sys.stdout.flush()
    os._exit(0)  # a handler still hanging must not keep the process alive


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["login", "acs", "logout", "sls", "serve"])
    ap.add_argument("settings")
    ap.add_argument("--relay")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--passive", action="store_true")
    ap.add_argument("--nameid")
    ap.add_argument("--post", action="store_true")
    ap.add_argument("--request-id")
    ap.add_argument("--response")
    ap.add_argument("--nameid-format")
    ap.add_argument("--session-index")
    ap.add_argument("--url")
    ap.add_argument("--log")
    ap.add_argument("--hang-seconds", type=float, default=0)
    a = ap.parse_args()

    from onelogin.saml2.auth import OneLogin_Saml2_Auth
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.settings import OneLogin_Saml2_Settings
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    s = json.load(open(a.settings))
    settings = settings_for(s)
    if a.command == "logout":
        if a.nameid is None:
            ap.error("logout needs --nameid")
        here = s.get("sls_url") or s["acs_url"]
        auth = OneLogin_Saml2_Auth(request_data(here), old_settings=settings)
        url = auth.logout(
            return_to=a.relay,
            name_id=a.nameid,
            session_index=a.session_index,
            name_id_format=a.nameid_format,
        )
        print(json.dumps({"url": url, "id": auth.get_last_request_id()}))
        return 0
    if a.command == "sls":
        if a.url is None:
            ap.error("sls needs --url")
        out, code = sls(s, settings, a.url, a.request_id)
        print(json.dumps(out))
        return code
    if a.command == "serve":
        if a.log is None or not s.get("sls_url"):
            ap.error("serve needs --log and sls_url in SETTINGS")
        serve(s, settings, a.log, a.hang_seconds)
        return 0
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
