#!/usr/bin/env python3
"""An identity provider that is not Entra: pysaml2's IdP (signing with the
xmlsec1 tool), as a test peer for fedgate's tenant claim map.

Usage:
    python scripts/pysaml2_idp.py metadata --key K --cert C --entity-id ID --out OUT.xml
    python scripts/pysaml2_idp.py respond --key K --cert C --entity-id ID \
        --sp-metadata SP.xml --acs URL --nameid VALUE [--nameid-format F] \
        [--attr NAME=VALUE]... [--authn-class CLASS] [--in-response-to ID]

`metadata` writes the IdP's metadata (its signing certificate, an
HTTP-Redirect SingleSignOnService). `respond` prints the base64
SAMLResponse of an unsolicited (IdP-initiated) login for the SP in
SP.xml, Response and Assertion signed (RSA-SHA256), the attributes under pysaml2's
attribute map for URI names (e.g. `mail` becomes
`urn:oid:0.9.2342.19200300.100.1.3`, `isMemberOf`
`urn:oid:1.3.6.1.4.1.5923.1.5.1.1`), as a SAML 2.0 IdP of the education
and LDAP world sends them.
"""
import argparse
import base64
import shutil
import sys
import warnings

warnings.filterwarnings("ignore")


def config(a, sp_metadata=None):
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.saml import NAME_FORMAT_URI

    conf = {
        "entityid": a.entity_id,
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [
                        ("https://idp.uni.example/sso", BINDING_HTTP_REDIRECT)
                    ]
                },
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_URI,
                    }
                },
                "name_id_format": [
                    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
                ],
            }
        },
        "key_file": a.key,
        "cert_file": a.cert,
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
    }
    if sp_metadata:
        conf["metadata"] = {"local": [sp_metadata]}
    return conf


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["metadata", "respond"])
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--entity-id", required=True)
    ap.add_argument("--sp-metadata")
    ap.add_argument("--acs")
    ap.add_argument("--nameid")
    ap.add_argument(
        "--nameid-format", default="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    )
    ap.add_argument("--attr", action="append", default=[])
    ap.add_argument(
        "--authn-class",
        default="urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    )
    ap.add_argument("--in-response-to")
    ap.add_argument("--out")
    a = ap.parse_args()

    from saml2.config import IdPConfig
    from saml2.metadata import create_metadata_string
    from saml2.saml import NameID
    from saml2.server import Server
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    if a.command == "metadata":
        cfg = IdPConfig()
        cfg.load(config(a))
        md = create_metadata_string(None, config=cfg, sign=False)
        open(a.out, "wb").write(md if isinstance(md, bytes) else md.encode())
        return 0

    cfg = IdPConfig()
    cfg.load(config(a, a.sp_metadata))
    idp = Server(config=cfg)
    identity = {}
    for kv in a.attr:
        name, value = kv.split("=", 1)
        identity.setdefault(name, []).append(value)
    sp_entity_id = next(iter(idp.metadata.service_providers()))
    resp = idp.create_authn_response(
        identity,
        in_response_to=a.in_response_to,
        destination=a.acs,
        sp_entity_id=sp_entity_id,
        name_id=NameID(format=a.nameid_format, text=a.nameid),
        authn={"class_ref": a.authn_class, "authn_auth": a.entity_id},
        sign_response=True,
        sign_assertion=True,
        # pysaml2 signs with SHA-1 unless told (fedgate refuses it).
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    xml = str(resp).encode()
    sys.stdout.write(base64.b64encode(xml).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
