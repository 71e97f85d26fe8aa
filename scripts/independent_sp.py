#!/usr/bin/env python3
"""An independent SAML service provider (pysaml2, verifying signatures with
the xmlsec1 tool) as a test peer for fedgate's outgoing assertions.

Usage:
    target/test-venv/bin/python scripts/independent_sp.py --idp-metadata IDP.xml \
        --sp-entity-id ID --acs-url URL RESPONSE_FILE

RESPONSE_FILE holds the SAMLResponse form value (base64, as posted) or raw
XML. The SP accepts unsolicited (IdP-initiated) responses, requires a signed
Assertion, and checks audience, recipient and time against the real clock.
With --defaults it leaves what must be signed to pysaml2's own defaults
(which want the Response signed), as a console set up by its docs would.
Prints one JSON object: {"ok": true, "name_id", "issuer", "attributes"} and
exits 0, or {"ok": false, "error"} and exits 1.
"""
import argparse
import base64
import json
import shutil
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idp-metadata", required=True)
    ap.add_argument("--sp-entity-id", required=True)
    ap.add_argument("--acs-url", required=True)
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("response")
    a = ap.parse_args()

    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    raw = open(a.response, "rb").read().strip()
    b64 = raw if not raw.startswith(b"<") else base64.b64encode(raw)
    sp = {
        "endpoints": {"assertion_consumer_service": [(a.acs_url, BINDING_HTTP_POST)]},
        "allow_unsolicited": True,
    }
    if not a.defaults:
        sp.update(
            {
                "want_assertions_signed": True,
                "want_response_signed": False,
                "authn_requests_signed": False,
            }
        )
    conf = {
        "entityid": a.sp_entity_id,
        "metadata": {"local": [a.idp_metadata]},
        "service": {"sp": sp},
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
    }
    try:
        cfg = SPConfig()
        cfg.load(conf)
        client = Saml2Client(config=cfg)
        resp = client.parse_authn_request_response(b64.decode(), BINDING_HTTP_POST)
        if resp is None:
            raise ValueError("pysaml2 returned no response")
        ava = resp.get_identity()
        out = {
            "ok": True,
            "name_id": resp.name_id.text if resp.name_id is not None else None,
            "issuer": resp.issuer(),
            "attributes": ava,
        }
        print(json.dumps(out))
        return 0
    except Exception as e:  # every refusal is an answer, with its class
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
