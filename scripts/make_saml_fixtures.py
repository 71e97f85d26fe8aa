#!/usr/bin/env python3
"""Generate Entra-shaped SAML 2.0 Response fixtures for fedgate's SAML verifier.

Writes everything under ``fixtures/saml/``:

* ``keys/``: test-only keys and self-signed certificates (generated once,
  then reused; ``--regenerate-keys`` makes new ones).  With the keys kept,
  re-running the script reproduces every file byte for byte (IDs are UUIDv5
  of the case name, RSA PKCS#1 v1.5 is deterministic, and ECDSA uses RFC 6979
  deterministic nonces).
* ``idp_metadata*.xml``: Entra-style federation metadata (signed).
* ``*.xml`` / ``*.b64``: SAML responses, valid and hostile.
* ``index.json``: one entry per case (see ``INDEX_FIELDS`` below), and
  ``README.md``: the scenario, the index schema and the case table.

Two independent signers are used: signxml (Python, lxml's libxml2 for
exclusive C14N) and the xmlsec1 command-line tool (libxmlsec1 + the system
libxml2).  Every index entry names the tool that signed it (``signer``, and
``base_signer`` for documents that were modified after signing).  Every
document that carries a signature is then checked with the xmlsec1 CLI
against the certificates of its metadata file (``xmlsec1_verify``); the
script aborts if a case does not verify (or verifies) when it should not
(or should).

Nothing here is copied from the generator of the corpus's synthetic Entra
cases (``generators/make_entra_cases.py``, named in tests/corpus/INDEX.md and
not part of this repository); the corpus was only read for the shape.

Usage:  target/test-venv/bin/python scripts/make_saml_fixtures.py [--regenerate-keys] [--out DIR]
Needs:  lxml, signxml, cryptography (in the venv scripts/install-test-deps makes); the xmlsec1 CLI.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner

# --------------------------------------------------------------------------
# Constants of the scenario
# --------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
TENANT = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f"
OTHER_TENANT = "c0ffee00-4b1d-4e6f-9a2b-3c4d5e6f7a8b"  # "fabrikam", used for issuer/tid mismatches
ISSUER = f"https://sts.windows.net/{TENANT}/"
OTHER_ISSUER = f"https://sts.windows.net/{OTHER_TENANT}/"
SP_ENTITY_ID = "https://fedgate.example.test/saml/contoso/metadata"
ACS_URL = "https://fedgate.example.test/saml/contoso/acs"
OTHER_SP_ENTITY_ID = "https://fedgate.example.test/saml/fabrikam/metadata"
OTHER_ACS_URL = "https://fedgate.example.test/saml/fabrikam/acs"
SSO_URL = f"https://login.microsoftonline.com/{TENANT}/saml2"
WSFED_URL = f"https://login.microsoftonline.com/{TENANT}/wsfed"
NOW = "2026-03-02T10:00:00Z"
T_ISSUE = dt.datetime(2026, 3, 2, 9, 59, 50, tzinfo=dt.timezone.utc)
# The AuthnRequest ID fedgate would have sent for SP-initiated logins.
REQUEST_ID = "_fg5e1d0c3b7a9f4e2d8c6b0a1f3e5d7c9b"
OTHER_REQUEST_ID = "_fg00112233445566778899aabbccddeeff"
MAX_BYTES = 512 * 1024

NS_UUID = uuid.UUID("5b0c1e8e-2f43-4c3a-9d7e-0a6b1f2c3d4e")

# XML namespaces
A = "urn:oasis:names:tc:SAML:2.0:assertion"
P = "urn:oasis:names:tc:SAML:2.0:protocol"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
FED = "http://docs.oasis-open.org/wsfed/federation/200706"
AUTH = "http://docs.oasis-open.org/wsfed/authorization/200706"
WSA = "http://www.w3.org/2005/08/addressing"
SAML1_A = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML1_P = "urn:oasis:names:tc:SAML:1.0:protocol"

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XPATH_TRANSFORM = "http://www.w3.org/TR/1999/REC-xpath-19991116"
SIG_ALGS = {
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "ecdsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "hmac-sha256": "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
}
DIGEST_ALGS = {
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}

# Entra claim types
C_TID = "http://schemas.microsoft.com/identity/claims/tenantid"
C_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
C_DISPLAY = "http://schemas.microsoft.com/identity/claims/displayname"
C_IDP = "http://schemas.microsoft.com/identity/claims/identityprovider"
C_AMR = "http://schemas.microsoft.com/claims/authnmethodsreferences"
C_GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
C_SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
C_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
C_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
C_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
C_GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"
C_ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
AMR_PASSWORD = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
AMR_MFA = "http://schemas.microsoft.com/claims/multipleauthn"

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
CM_SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
AC_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
ST_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
ST_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
ST_REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"

SAML_ID_ATTRS = [
    ("ID", f"{A}:Assertion"),
    ("ID", f"{P}:Response"),
]
SAML1_ID_ATTRS = [
    ("AssertionID", f"{SAML1_A}:Assertion"),
    ("ResponseID", f"{SAML1_P}:Response"),
]

INDEX_FIELDS = [
    "file", "expect", "subject", "object_id", "mfa", "groups_count", "groups_overage",
    "metadata", "sp_entity_id", "acs_url", "now", "allow_sha1", "in_response_to",
    "signer", "base_signer", "signed_parts", "xmlsec1_verify", "xmlsec1_detail", "why",
]


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def det_id(*parts: str) -> str:
    """A deterministic Entra-style ID ("_" + GUID) for a case."""
    return "_" + str(uuid.uuid5(NS_UUID, "/".join(parts)))


def det_guid(*parts: str) -> str:
    return str(uuid.uuid5(NS_UUID, "/".join(parts)))


def ts(t: dt.datetime, millis: bool = False) -> str:
    if millis:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# Keys and certificates
# --------------------------------------------------------------------------

@dataclass
class KeyPair:
    name: str
    kind: str  # "rsa" | "ec"
    key_path: Path
    cert_path: Path

    @property
    def key_pem(self) -> bytes:
        return self.key_path.read_bytes()

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def cert_b64(self) -> str:
        der = x509.load_pem_x509_certificate(self.cert_pem).public_bytes(serialization.Encoding.DER)
        return base64.b64encode(der).decode()

    @property
    def xmlsec_key_data(self) -> str:
        return "ecdsa" if self.kind == "ec" else "rsa"


KEY_SPECS = {
    # name: (kind, size/curve, not_before, not_after, organization)
    "idp_current": ("rsa", 2048, dt.datetime(2025, 1, 1), dt.datetime(2035, 1, 1), "current signing key"),
    "idp_next": ("rsa", 2048, dt.datetime(2025, 1, 1), dt.datetime(2035, 1, 1), "next signing key (rollover)"),
    "idp_ec": ("ec", "P-256", dt.datetime(2025, 1, 1), dt.datetime(2035, 1, 1), "EC P-256 signing key"),
    "idp_weak": ("rsa", 1024, dt.datetime(2025, 1, 1), dt.datetime(2035, 1, 1), "weak RSA-1024 signing key"),
    "idp_expired": ("rsa", 2048, dt.datetime(2019, 1, 1), dt.datetime(2020, 1, 1), "expired signing cert"),
    "attacker": ("rsa", 2048, dt.datetime(2025, 1, 1), dt.datetime(2035, 1, 1), "attacker"),
}


def ensure_keys(keys_dir: Path, regenerate: bool) -> dict[str, KeyPair]:
    keys_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (kind, size, nbf, naf, org) in KEY_SPECS.items():
        kp = KeyPair(name, kind, keys_dir / f"{name}_key.pem", keys_dir / f"{name}_cert.pem")
        if regenerate or not (kp.key_path.exists() and kp.cert_path.exists()):
            if kind == "rsa":
                key = rsa.generate_private_key(public_exponent=65537, key_size=size)
            else:
                key = ec.generate_private_key(ec.SECP256R1())
            # Every cert claims Entra's subject, the attacker's too: trust must
            # come from the key/certificate itself, never from a name.
            subject = x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, "Microsoft Azure Federated SSO Certificate"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"fedgate test fixture: {org}"),
            ])
            cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nbf.replace(tzinfo=dt.timezone.utc))
                .not_valid_after(naf.replace(tzinfo=dt.timezone.utc))
                .sign(key, hashes.SHA256())
            )
            kp.key_path.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            kp.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[name] = kp
    return out


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class User:
    upn: str
    display: str
    given: str
    surname: str
    oid: str
    mfa: bool = False
    groups: list = field(default_factory=list)
    roles: list = field(default_factory=list)
    overage: bool = False
    nameid: Optional[str] = None          # default: the UPN
    nameid_format: str = NAMEID_EMAIL
    # (before, comment, after): NameID text split by an XML comment
    nameid_comment: Optional[tuple] = None

    @property
    def subject(self) -> str:
        if self.nameid_comment:
            return self.nameid_comment[0] + self.nameid_comment[2]
        return self.nameid if self.nameid is not None else self.upn


def groups(n: int, seed: str = "contoso") -> list:
    return [det_guid("group", seed, str(i)) for i in range(n)]


ADMIN_GROUP = det_guid("group", "contoso", "global-backup-admins")

ADELE = User("adele.vance@contoso.example", "Adele Vance", "Adele", "Vance",
             "4f6a2c1e-8b3d-4e5f-9a7b-1c2d3e4f5a6b", groups=groups(5), roles=["Backup.Operator"])
ALEX = User("alex.wilber@contoso.example", "Alex Wilber", "Alex", "Wilber",
            "9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e", groups=groups(3, "alex"), roles=[],
            nameid="fGq3tK8vN2xW5yZ1aB4cD7eF0gH3iJ6kL9mN2oP5qR8", nameid_format=NAMEID_PERSISTENT)
MEGAN = User("megan.bowen@contoso.example", "Megan Bowen", "Megan", "Bowen",
             "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b", mfa=True, groups=groups(4, "megan"),
             roles=["Backup.Admin"])
MAIN = User("lee.gu@contoso.example", "Lee Gu", "Lee", "Gu",
            "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d", mfa=True, groups=groups(20, "lee"),
            roles=["Backup.Operator", "Backup.Restore"])
OVERAGE = User("nestor.wilke@contoso.example", "Nestor Wilke", "Nestor", "Wilke",
               "0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a", overage=True, roles=["Backup.Operator"])
COMMENT_USER = User("user@contoso.example", "Comment User", "Comment", "User",
                    "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f", groups=groups(2, "cu"),
                    nameid_comment=("user@", " x ", "contoso.example"))
A_USER = User("a@contoso.example", "A User", "A", "User",
              "6d7e8f9a-0b1c-4d2e-8f3a-4b5c6d7e8f9a", groups=groups(2, "a"))
EVIL_USER = User("admin@contoso.example", "Global Admin", "Global", "Admin",
                 "ffffffff-0000-4000-8000-000000000001", mfa=True, groups=[ADMIN_GROUP],
                 roles=["Backup.Admin"])


def entra_attributes(user: User, tenant: str = TENANT) -> list:
    """Attributes in the order Entra emits them."""
    attrs = [
        (C_TID, [tenant]),
        (C_OID, [user.oid]),
        (C_DISPLAY, [user.display]),
    ]
    if user.overage:
        attrs.append((C_GROUPS_LINK, [f"https://graph.windows.net/{tenant}/users/{user.oid}/getMemberObjects"]))
    elif user.groups:
        attrs.append((C_GROUPS, list(user.groups)))
    attrs += [
        (C_IDP, [f"https://sts.windows.net/{tenant}/"]),
        (C_AMR, [AMR_PASSWORD, AMR_MFA] if user.mfa else [AMR_PASSWORD]),
        (C_GIVEN, [user.given]),
        (C_SURNAME, [user.surname]),
        (C_EMAIL, [user.upn]),
        (C_NAME, [user.upn]),
    ]
    if user.roles:
        attrs.append((C_ROLE, list(user.roles)))
    return attrs


# --------------------------------------------------------------------------
# Response builder
# --------------------------------------------------------------------------

@dataclass
class Spec:
    name: str
    user: User = ADELE
    issue: dt.datetime = T_ISSUE
    millis: bool = False
    destination: Optional[str] = ACS_URL
    in_response_to: Optional[str] = REQUEST_ID
    issuer: str = ISSUER
    assertion_issuer: Optional[str] = None  # default: issuer
    tenant_claim: str = TENANT
    audience: str = SP_ENTITY_ID
    audience_restriction: bool = True
    conditions: bool = True
    recipient: str = ACS_URL
    confirmation_method: str = CM_BEARER
    nameid: bool = True
    authn_statement: bool = True
    include_assertion: bool = True
    status: tuple = (ST_SUCCESS, None, None)
    attributes: Optional[list] = None  # default: entra_attributes(user, tenant_claim)
    xsi_typed_values: bool = False     # xsi:type="xs:string" on every AttributeValue, xs/xsi declared on the root
    response_id: Optional[str] = None
    assertion_id: Optional[str] = None

    def rid(self) -> str:
        return self.response_id or det_id(self.name, "response")

    def aid(self) -> str:
        return self.assertion_id or det_id(self.name, "assertion")


def build_assertion(spec: Spec, parent: Optional[etree._Element] = None) -> etree._Element:
    user = spec.user
    t = spec.issue
    m = spec.millis
    if parent is None:
        asrt = etree.Element(q(A, "Assertion"), nsmap={None: A})
    else:
        asrt = etree.SubElement(parent, q(A, "Assertion"), nsmap={None: A})
    asrt.set("ID", spec.aid())
    asrt.set("IssueInstant", ts(t, m))
    asrt.set("Version", "2.0")
    E = lambda p, tag, text=None, **attrs: _sub(p, A, tag, text, attrs)
    E(asrt, "Issuer", spec.assertion_issuer or spec.issuer)
    subj = E(asrt, "Subject")
    if spec.nameid:
        nid = E(subj, "NameID", Format=user.nameid_format)
        if user.nameid_comment:
            before, comment, after = user.nameid_comment
            nid.text = before
            c = etree.Comment(comment)
            c.tail = after
            nid.append(c)
        else:
            nid.text = user.subject
    sc = E(subj, "SubjectConfirmation", Method=spec.confirmation_method)
    scd_attrs = {}
    if spec.in_response_to:
        scd_attrs["InResponseTo"] = spec.in_response_to
    scd_attrs["NotOnOrAfter"] = ts(t + dt.timedelta(minutes=5), m)
    scd_attrs["Recipient"] = spec.recipient
    E(sc, "SubjectConfirmationData", **scd_attrs)
    if spec.conditions:
        cond = E(asrt, "Conditions", NotBefore=ts(t, m), NotOnOrAfter=ts(t + dt.timedelta(hours=1), m))
        if spec.audience_restriction:
            ar = E(cond, "AudienceRestriction")
            E(ar, "Audience", spec.audience)
    attrs = spec.attributes if spec.attributes is not None else entra_attributes(user, spec.tenant_claim)
    if attrs:
        st = E(asrt, "AttributeStatement")
        for name, values in attrs:
            at = E(st, "Attribute", Name=name)
            for v in values:
                av = E(at, "AttributeValue", v)
                if spec.xsi_typed_values:
                    av.set(q(XSI, "type"), "xs:string")
    if spec.authn_statement:
        authn = E(asrt, "AuthnStatement", AuthnInstant=ts(t - dt.timedelta(seconds=98), m),
                  SessionIndex=spec.aid())
        ctx = E(authn, "AuthnContext")
        E(ctx, "AuthnContextClassRef", AC_PASSWORD)
    return asrt


def _sub(parent, ns, tag, text, attrs):
    el = etree.SubElement(parent, q(ns, tag))
    for k, v in attrs.items():
        el.set(k, v)
    if text is not None:
        el.text = text
    return el


def build_response(spec: Spec) -> etree._Element:
    nsmap = {"samlp": P}
    if spec.xsi_typed_values:
        # Declared on the Response, i.e. OUTSIDE the signed Assertion: exclusive
        # C14N must pull xs in through the InclusiveNamespaces PrefixList.
        nsmap.update({"xs": XS, "xsi": XSI})
    resp = etree.Element(q(P, "Response"), nsmap=nsmap)
    resp.set("ID", spec.rid())
    resp.set("Version", "2.0")
    resp.set("IssueInstant", ts(spec.issue, spec.millis))
    if spec.destination is not None:
        resp.set("Destination", spec.destination)
    if spec.in_response_to:
        resp.set("InResponseTo", spec.in_response_to)
    iss = etree.SubElement(resp, q(A, "Issuer"), nsmap={None: A})
    iss.text = spec.issuer
    status = etree.SubElement(resp, q(P, "Status"))
    code, sub, msg = spec.status
    sc = etree.SubElement(status, q(P, "StatusCode"), Value=code)
    if sub:
        etree.SubElement(sc, q(P, "StatusCode"), Value=sub)
    if msg:
        sm = etree.SubElement(status, q(P, "StatusMessage"))
        sm.text = msg
    if spec.include_assertion:
        build_assertion(spec, resp)
    return resp


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root)


SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, SAFE_PARSER)


def by_id(root: etree._Element, id_value: str) -> etree._Element:
    found = root.xpath("//*[@ID=$v]", v=id_value)
    if len(found) != 1:
        raise RuntimeError(f"expected one element with ID {id_value}, found {len(found)}")
    return found[0]


def issuer_of(el: etree._Element) -> etree._Element:
    for child in el:
        if child.tag in (q(A, "Issuer"),):
            return child
    raise RuntimeError("no Issuer child")


def insert_after_issuer(target: etree._Element, new: etree._Element) -> None:
    iss = issuer_of(target)
    target.insert(target.index(iss) + 1, new)


def remove_keep_tail(el: etree._Element) -> None:
    """Remove an element, keeping its tail text in the document."""
    parent = el.getparent()
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    el.tail = None
    parent.remove(el)


def direct_signature(el: etree._Element) -> etree._Element:
    sigs = [c for c in el if c.tag == q(DS, "Signature")]
    if len(sigs) != 1:
        raise RuntimeError("expected exactly one direct ds:Signature child")
    return sigs[0]


# --------------------------------------------------------------------------
# Signing: signxml
# --------------------------------------------------------------------------

class DeterministicECKey:
    """Wraps an EC private key so that signxml's ECDSA signatures use RFC 6979
    deterministic nonces: re-running the script then reproduces the same bytes."""

    def __init__(self, key):
        self._key = key
        self.key_size = key.key_size

    def sign(self, data, signature_algorithm):
        try:
            algo = ec.ECDSA(signature_algorithm.algorithm, deterministic_signing=True)
        except TypeError:  # cryptography < 43: random nonces, output not reproducible
            print("warning: cryptography too old for RFC 6979; ECDSA output will differ per run", file=sys.stderr)
            algo = signature_algorithm
        return self._key.sign(data, algo)

    def public_key(self):
        return self._key.public_key()


def sign_signxml(doc: bytes, target_id: str, kp: KeyPair, sig_alg: str = "rsa-sha256",
                 digest: str = "sha256", first_child: bool = False) -> bytes:
    """Enveloped signature by signxml, placed right after the target's Issuer.

    signxml writes the signature where a ``<ds:Signature Id="placeholder"/>``
    stands; we put that placeholder after the Issuer (SAML schema order), or
    first (metadata).
    """
    root = parse(doc)
    target = by_id(root, target_id)
    placeholder = etree.Element(q(DS, "Signature"), nsmap={"ds": DS})
    placeholder.set("Id", "placeholder")
    if first_child:
        target.insert(0, placeholder)
    else:
        insert_after_issuer(target, placeholder)
    signer = XMLSigner(method=SignatureConstructionMethod.enveloped, signature_algorithm=sig_alg,
                       digest_algorithm=digest, c14n_algorithm=EXC)
    key = serialization.load_pem_private_key(kp.key_pem, password=None)
    if kp.kind == "ec":
        key = DeterministicECKey(key)
    signed = signer.sign(root, key=key, cert=kp.cert_pem.decode(), reference_uri="#" + target_id,
                         id_attribute="ID")
    out = to_bytes(signed)
    # Sanity: the profile shape (exactly one Reference, enveloped + exc-c14n).
    check = parse(out)
    sig = direct_signature(by_id(check, target_id))
    refs = sig.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert len(refs) == 1 and refs[0].get("URI") == "#" + target_id, "signxml produced an unexpected Reference"
    algs = [t.get("Algorithm") for t in refs[0].iter(q(DS, "Transform"))]
    assert algs == [ENVELOPED, EXC], algs
    return out


# --------------------------------------------------------------------------
# Signing: the xmlsec1 CLI
# --------------------------------------------------------------------------

def signature_template(sig_alg: str, digest: str, ref_uri: str, *, style: str = "default",
                       prefix_list: Optional[str] = None, xpath_transform: bool = False,
                       key_info: bool = True) -> etree._Element:
    """An XML-DSig template for xmlsec1.

    style "default": ``<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">``
    as Entra writes it; style "ds": ``<ds:Signature xmlns:ds=...>``.
    """
    nsmap = {None: DS} if style == "default" else {"ds": DS}
    sig = etree.Element(q(DS, "Signature"), nsmap=nsmap)
    S = lambda p, tag, **kw: _sub(p, DS, tag, None, kw)
    si = S(sig, "SignedInfo")
    S(si, "CanonicalizationMethod", Algorithm=EXC)
    S(si, "SignatureMethod", Algorithm=SIG_ALGS[sig_alg])
    ref = S(si, "Reference", URI=ref_uri)
    trs = S(ref, "Transforms")
    S(trs, "Transform", Algorithm=ENVELOPED)
    if xpath_transform:
        t = S(trs, "Transform", Algorithm=XPATH_TRANSFORM)
        # The expression's prefix must be in scope of the XPath element: it uses
        # the template's own ds: prefix, so this needs style "ds".
        assert style == "ds", "the XPath transform template needs the ds: prefix"
        xp = etree.SubElement(t, q(DS, "XPath"))
        xp.text = "not(ancestor-or-self::ds:Signature)"
    t = S(trs, "Transform", Algorithm=EXC)
    if prefix_list:
        inc = etree.SubElement(t, q(EXC, "InclusiveNamespaces"), nsmap={"ec": EXC})
        inc.set("PrefixList", prefix_list)
    S(ref, "DigestMethod", Algorithm=DIGEST_ALGS[digest])
    S(ref, "DigestValue")
    S(sig, "SignatureValue")
    if key_info:
        ki = S(sig, "KeyInfo")
        S(ki, "X509Data")  # xmlsec1 fills in the X509Certificate of the signing key
    return sig


UNSIGNED_TEMPLATE_XPATH = (
    "(//*[local-name()='Signature' and namespace-uri()='http://www.w3.org/2000/09/xmldsig#']"
    "[*[local-name()='SignatureValue' and not(node())]])[1]"
)


def run_xmlsec1(args: list) -> subprocess.CompletedProcess:
    return subprocess.run(["xmlsec1", *args], capture_output=True)


def id_attr_args(id_attrs) -> list:
    out = []
    for attr, node in id_attrs:
        out += [f"--id-attr:{attr}", node]
    return out


def xmlsec1_sign_template(doc: bytes, kp: Optional[KeyPair], *, hmac_key: Optional[Path] = None,
                          id_attrs=SAML_ID_ATTRS) -> bytes:
    """Sign the first unsigned Signature template in ``doc`` with xmlsec1."""
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "tmpl.xml"
        dst = Path(td) / "signed.xml"
        src.write_bytes(doc)
        args = ["--sign"]
        if hmac_key is not None:
            args += ["--hmackey", str(hmac_key)]
        else:
            args += ["--privkey-pem", f"{kp.key_path},{kp.cert_path}"]
        args += id_attr_args(id_attrs)
        args += ["--node-xpath", UNSIGNED_TEMPLATE_XPATH, "--output", str(dst), str(src)]
        proc = run_xmlsec1(args)
        if proc.returncode != 0:
            raise RuntimeError("xmlsec1 --sign failed:\n" + proc.stderr.decode(errors="replace"))
        return dst.read_bytes()


def sign_xmlsec1(doc: bytes, target_id: str, kp: Optional[KeyPair], sig_alg: str = "rsa-sha256",
                 digest: str = "sha256", *, style: str = "default", prefix_list: Optional[str] = None,
                 xpath_transform: bool = False, key_info: bool = True, ref_uri: Optional[str] = None,
                 hmac_key: Optional[Path] = None, pretty: bool = False, id_attr: str = "ID",
                 id_attrs=SAML_ID_ATTRS) -> bytes:
    """Insert a template after the target's Issuer and sign it with xmlsec1."""
    root = parse(doc)
    found = root.xpath(f"//*[@{id_attr}=$v]", v=target_id)
    assert len(found) == 1, f"target {target_id} not unique"
    target = found[0]
    tmpl = signature_template(sig_alg, digest, "#" + target_id if ref_uri is None else ref_uri, style=style,
                              prefix_list=prefix_list, xpath_transform=xpath_transform, key_info=key_info)
    insert_after_issuer(target, tmpl)
    if pretty:
        etree.indent(root, space="  ")
    return xmlsec1_sign_template(to_bytes(root), kp, hmac_key=hmac_key, id_attrs=id_attrs)


# --------------------------------------------------------------------------
# Verification with the xmlsec1 CLI
# --------------------------------------------------------------------------

def decode_if_b64(path: Path, data: bytes) -> bytes:
    if path.suffix in (".b64", ".base64"):
        return base64.b64decode(data, validate=True)
    return data


def xmlsec1_verify(data: bytes, certs: list, *, id_attrs=SAML_ID_ATTRS) -> tuple:
    """Verify EVERY ds:Signature in ``data`` with xmlsec1, trusting only ``certs``.

    Returns ("ok"|"fail", detail).  "ok" means: at least one signature, and
    each one verifies with one of the trusted certs (KeyInfo is ignored:
    --enabled-key-data rsa/ecdsa only, so a certificate in the document is
    never used).
    """
    root = parse(data)
    sigs = root.xpath("//*[local-name()='Signature' and namespace-uri()=$ds]", ds=DS)
    if not sigs:
        return None, "no ds:Signature"
    results = []
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "doc.xml"
        f.write_bytes(data)
        for i, sig in enumerate(sigs, start=1):
            parent = sig.getparent()
            where = etree.QName(parent).localname if parent is not None else "?"
            ok_with = None
            last_err = ""
            for kp in certs:
                args = ["--verify", "--enabled-key-data", kp.xmlsec_key_data, "--pubkey-cert-pem", str(kp.cert_path)]
                args += id_attr_args(id_attrs)
                args += ["--node-xpath", f"(//*[local-name()='Signature' and namespace-uri()='{DS}'])[{i}]", str(f)]
                proc = run_xmlsec1(args)
                if proc.returncode == 0:
                    ok_with = kp.cert_path.name
                    break
                last_err = _short_err(proc.stderr.decode(errors="replace"))
            if ok_with:
                results.append((True, f"{where} signature: OK with keys/{ok_with}"))
            else:
                results.append((False, f"{where} signature: FAIL ({last_err})"))
    verdict = "ok" if all(r[0] for r in results) else "fail"
    return verdict, "; ".join(r[1] for r in results)


def _short_err(stderr: str) -> str:
    for pat, label in [
        (r"C14N error", "C14N failed (entity reference node)"),
        (r"data and digest do not match", "digest mismatch"),
        (r"signature verification failed|data do not match", "SignedInfo signature mismatch"),
        (r"already defined|duplicate", "duplicate ID"),
        (r"key is not found|failed to find key|keys manager", "no usable key"),
        (r"id=.*not found|node with id|xpointer", "reference not resolved"),
    ]:
        if re.search(pat, stderr, re.I):
            return label
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    return lines[-1][:160] if lines else "failed"


# --------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------

CLAIMS_OFFERED = [
    (C_NAME, "Name", "The mutable display name of the user."),
    ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "Subject",
     "An immutable, globally unique, non-reusable identifier of the user that is unique to the application for which a token is issued."),
    (C_GIVEN, "Given Name", "First name of the user."),
    (C_SURNAME, "Surname", "Last name of the user."),
    (C_DISPLAY, "Display Name", "Display name of the user."),
    (C_OID, "ObjectIdentifier", "Primary identifier for the user in the directory. Immutable, globally unique, non-reusable."),
    (C_TID, "TenantId", "Identifier for the user's tenant."),
    (C_IDP, "IdentityProvider", "Identity provider for the user."),
    (C_EMAIL, "Email", "Email address of the user."),
    (C_GROUPS, "Groups", "Groups of the user."),
    (C_GROUPS_LINK, "GroupsOverageClaim", "Issued when number of user's group claims exceeds return limit."),
    (C_ROLE, "Role Claim", "Roles that the user or Service Principal is attached to"),
    (C_AMR, "Authentication Methods References", "The methods used to authenticate the user."),
]


def key_descriptor(parent: etree._Element, cert_b64: str) -> None:
    kd = etree.SubElement(parent, q(MD, "KeyDescriptor"), use="signing")
    ki = etree.SubElement(kd, q(DS, "KeyInfo"), nsmap={None: DS})
    xd = etree.SubElement(ki, q(DS, "X509Data"))
    xc = etree.SubElement(xd, q(DS, "X509Certificate"))
    xc.text = cert_b64


def build_metadata(name: str, idp_certs: list, role_certs: Optional[list] = None) -> etree._Element:
    """Entra-style federation metadata (shape of AADCommonMetadata.xml, tenant-specific)."""
    role_certs = idp_certs if role_certs is None else role_certs
    ed = etree.Element(q(MD, "EntityDescriptor"), nsmap={None: MD})
    ed.set("ID", det_id("metadata", name))
    ed.set("entityID", ISSUER)
    # WS-Federation roles (the SAML parser must skip these)
    for role_type in ("fed:SecurityTokenServiceType", "fed:ApplicationServiceType"):
        rd = etree.SubElement(ed, q(MD, "RoleDescriptor"), nsmap={"xsi": XSI, "fed": FED})
        rd.set(q(XSI, "type"), role_type)
        rd.set("protocolSupportEnumeration", FED)
        for c in role_certs:
            key_descriptor(rd, c)
        if role_type == "fed:SecurityTokenServiceType":
            cto = etree.SubElement(rd, q(FED, "ClaimTypesOffered"))
            for uri, disp, desc in CLAIMS_OFFERED:
                ct = etree.SubElement(cto, q(AUTH, "ClaimType"), nsmap={"auth": AUTH}, Uri=uri)
                etree.SubElement(ct, q(AUTH, "DisplayName")).text = disp
                etree.SubElement(ct, q(AUTH, "Description")).text = desc
            ep_names = ("SecurityTokenServiceEndpoint", "PassiveRequestorEndpoint")
        else:
            ts_ = etree.SubElement(rd, q(FED, "TargetScopes"))
            er = etree.SubElement(ts_, q(WSA, "EndpointReference"), nsmap={"wsa": WSA})
            etree.SubElement(er, q(WSA, "Address")).text = ISSUER
            ep_names = ("ApplicationServiceEndpoint", "PassiveRequestorEndpoint")
        for ep in ep_names:
            e = etree.SubElement(rd, q(FED, ep))
            er = etree.SubElement(e, q(WSA, "EndpointReference"), nsmap={"wsa": WSA})
            etree.SubElement(er, q(WSA, "Address")).text = WSFED_URL
    idp = etree.SubElement(ed, q(MD, "IDPSSODescriptor"), protocolSupportEnumeration=P)
    for c in idp_certs:
        key_descriptor(idp, c)
    etree.SubElement(idp, q(MD, "SingleLogoutService"),
                     Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", Location=SSO_URL)
    for fmt in (NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED):
        etree.SubElement(idp, q(MD, "NameIDFormat")).text = fmt
    etree.SubElement(idp, q(MD, "SingleSignOnService"),
                     Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", Location=SSO_URL)
    etree.SubElement(idp, q(MD, "SingleSignOnService"),
                     Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", Location=SSO_URL)
    return ed


def sign_metadata(ed: etree._Element, kp: KeyPair) -> bytes:
    """Sign the EntityDescriptor (Signature first, as Entra does): xmlsec1 for
    RSA; signxml (deterministic ECDSA) for the EC metadata, so that re-running
    the script reproduces the file."""
    if kp.kind == "ec":
        data = sign_signxml(to_bytes(ed), ed.get("ID"), kp, sig_alg="ecdsa-sha256", first_child=True)
        return b'<?xml version="1.0" encoding="utf-8"?>' + data
    alg = "rsa-sha256"
    tmpl = signature_template(alg, "sha256", "#" + ed.get("ID"), style="default")
    ed.insert(0, tmpl)  # Entra puts the Signature first
    doc = b'<?xml version="1.0" encoding="utf-8"?>' + to_bytes(ed)
    return xmlsec1_sign_template(doc, kp, id_attrs=[("ID", f"{MD}:EntityDescriptor")])


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

@dataclass
class Case:
    file: str
    expect: str
    data: bytes
    why: str
    signer: str                      # signxml | xmlsec1 | none | crafted
    metadata: str = "idp_metadata.xml"
    base_signer: Optional[str] = None
    # Where the ds:Signature element(s) stand as generated (before any tampering):
    # "assertion" | "response" | "both" | "none".
    signed_parts: Optional[str] = None
    user: Optional[User] = None         # for valid cases
    in_response_to: Optional[str] = REQUEST_ID
    allow_sha1: bool = False
    # What the script asserts about the xmlsec1 check: "ok", "fail", None (no signature) or "skip".
    xmlsec1_expect: Optional[str] = None
    id_attrs: list = field(default_factory=lambda: list(SAML_ID_ATTRS))
    write: bool = True


class Builder:
    def __init__(self, out: Path, keys: dict):
        self.out = out
        self.k = keys
        self.cases: list[Case] = []
        self.metadata_certs: dict[str, list] = {}

    # ---- helpers -------------------------------------------------------
    def add(self, case: Case) -> Case:
        if case.write:
            (self.out / case.file).write_bytes(case.data)
        self.cases.append(case)
        return case

    def response(self, spec: Spec) -> bytes:
        return to_bytes(build_response(spec))

    def assertion_signed_signxml(self, spec: Spec, kp: Optional[KeyPair] = None, **kw) -> bytes:
        return sign_signxml(self.response(spec), spec.aid(), kp or self.k["idp_current"], **kw)

    def assertion_signed_xmlsec1(self, spec: Spec, kp: Optional[KeyPair] = None, **kw) -> bytes:
        return sign_xmlsec1(self.response(spec), spec.aid(), kp or self.k["idp_current"], **kw)

    def response_signed_xmlsec1(self, spec: Spec, kp: Optional[KeyPair] = None, doc: Optional[bytes] = None,
                                **kw) -> bytes:
        return sign_xmlsec1(doc if doc is not None else self.response(spec), spec.rid(),
                            kp or self.k["idp_current"], **kw)

    def both_signed_xmlsec1(self, spec: Spec, kp: Optional[KeyPair] = None, **kw) -> bytes:
        doc = self.assertion_signed_xmlsec1(spec, kp, **kw)
        return self.response_signed_xmlsec1(spec, kp, doc=doc, **kw)

    # ---- metadata ------------------------------------------------------
    def metadata(self):
        k = self.k
        variants = {
            "idp_metadata.xml": ([k["idp_current"], k["idp_next"]], None, k["idp_current"]),
            "idp_metadata_ec.xml": ([k["idp_ec"]], None, k["idp_ec"]),
            "idp_metadata_weak.xml": ([k["idp_weak"]], None, k["idp_weak"]),
            "idp_metadata_expired_cert.xml": ([k["idp_expired"]], None, k["idp_expired"]),
            # Trap: the attacker's certificate appears only in the WS-Fed
            # RoleDescriptors; SAML trust must come from IDPSSODescriptor only.
            "idp_metadata_roledescriptor_trap.xml": (
                [k["idp_current"], k["idp_next"]], [k["idp_current"], k["idp_next"], k["attacker"]], k["idp_current"]),
        }
        for fname, (idp_kps, role_kps, signer) in variants.items():
            ed = build_metadata(fname, [kp.cert_b64 for kp in idp_kps],
                                None if role_kps is None else [kp.cert_b64 for kp in role_kps])
            data = sign_metadata(ed, signer)
            (self.out / fname).write_bytes(data)
            verdict, detail = xmlsec1_verify(data, [signer], id_attrs=[("ID", f"{MD}:EntityDescriptor")])
            assert verdict == "ok", (fname, detail)
            self.metadata_certs[fname] = idp_kps

    # ---- valid ---------------------------------------------------------
    def valid_cases(self):
        k = self.k
        B = self

        s = Spec("valid_assertion_signxml", user=ADELE)
        self.add(Case("valid_assertion_signxml.xml", "valid", B.assertion_signed_signxml(s),
                      "SP-initiated; Assertion signed by signxml (rsa-sha256, sha256, ds: prefix); NameID emailAddress",
                      "signxml", signed_parts="assertion", user=ADELE, xmlsec1_expect="ok"))

        s = Spec("valid_assertion_xmlsec1", user=ALEX, in_response_to=None)
        self.add(Case("valid_assertion_xmlsec1.xml", "valid", B.assertion_signed_xmlsec1(s),
                      "IdP-initiated (no InResponseTo); Assertion signed by xmlsec1 (rsa-sha256, Entra-style "
                      "unprefixed Signature); NameID persistent",
                      "xmlsec1", signed_parts="assertion", user=ALEX, in_response_to=None, xmlsec1_expect="ok"))

        s = Spec("valid_response_signed_only", user=ADELE)
        self.add(Case("valid_response_signed_only.xml", "valid", B.response_signed_xmlsec1(s),
                      "only the Response is signed (xmlsec1); the Assertion inside has no Signature and counts as "
                      "signed through the Response",
                      "xmlsec1", signed_parts="response", user=ADELE, xmlsec1_expect="ok"))

        s = Spec("valid_both_signed", user=ALEX)
        self.add(Case("valid_both_signed.xml", "valid", B.both_signed_xmlsec1(s),
                      "Assertion signed, then Response signed over it (both by xmlsec1, same key); NameID persistent",
                      "xmlsec1", signed_parts="both", user=ALEX, xmlsec1_expect="ok"))

        s = Spec("valid_rollover_next_cert", user=ADELE, in_response_to=None)
        self.add(Case("valid_rollover_next_cert.xml", "valid", B.assertion_signed_signxml(s, k["idp_next"]),
                      "signed (signxml) with the NEXT key of the rollover: idp_metadata.xml lists current and next",
                      "signxml", signed_parts="assertion", user=ADELE, in_response_to=None, xmlsec1_expect="ok"))

        s = Spec("valid_ecdsa_p256", user=ADELE)
        self.add(Case("valid_ecdsa_p256.xml", "valid",
                      B.assertion_signed_signxml(s, k["idp_ec"], sig_alg="ecdsa-sha256"),
                      "ECDSA P-256 with SHA-256 (signxml; SignatureValue is r||s, 64 bytes) against idp_metadata_ec.xml",
                      "signxml", metadata="idp_metadata_ec.xml", signed_parts="assertion", user=ADELE,
                      xmlsec1_expect="ok"))

        s = Spec("valid_rsa_sha512", user=ADELE)
        self.add(Case("valid_rsa_sha512.xml", "valid",
                      B.assertion_signed_xmlsec1(s, sig_alg="rsa-sha512", digest="sha512"),
                      "rsa-sha512 signature with a sha512 digest (xmlsec1)",
                      "xmlsec1", signed_parts="assertion", user=ADELE, xmlsec1_expect="ok"))

        s = Spec("valid_inclusive_namespaces", user=ADELE, xsi_typed_values=True)
        doc = B.assertion_signed_xmlsec1(s, style="ds", prefix_list="xs xsi")
        assert_prefix_list_matters(doc, s.aid(), ["xs", "xsi"])
        self.add(Case("valid_inclusive_namespaces.xml", "valid", doc,
                      "xmlns:xs and xmlns:xsi are declared on the Response (outside the signed Assertion); every "
                      "AttributeValue has xsi:type=\"xs:string\"; the Reference's exc-c14n transform has "
                      "<ec:InclusiveNamespaces PrefixList=\"xs xsi\"/>, so xmlns:xs (used only inside an attribute "
                      "value) must be rendered on the Assertion. Signed by xmlsec1 (signxml does not write "
                      "InclusiveNamespaces for enveloped references)",
                      "xmlsec1", signed_parts="assertion", user=ADELE, xmlsec1_expect="ok"))

        s = Spec("valid_mfa", user=MEGAN)
        self.add(Case("valid_mfa.xml", "valid", B.assertion_signed_signxml(s),
                      "MFA user: authnmethodsreferences = password + multipleauthn (signxml)",
                      "signxml", signed_parts="assertion", user=MEGAN, xmlsec1_expect="ok"))

        s = Spec("valid_groups_overage", user=OVERAGE)
        self.add(Case("valid_groups_overage.xml", "valid", B.assertion_signed_signxml(s),
                      "groups overage: http://schemas.microsoft.com/claims/groups.link instead of groups (signxml)",
                      "signxml", signed_parts="assertion", user=OVERAGE, xmlsec1_expect="ok"))

        s = Spec("valid_comment_in_nameid", user=COMMENT_USER)
        self.add(Case("valid_comment_in_nameid.xml", "valid", B.assertion_signed_xmlsec1(s),
                      "NameID is 'user@<!-- x -->contoso.example' and was signed that way (xmlsec1): exc-c14n drops "
                      "the comment, the signature holds, and the subject is the whole text 'user@contoso.example'",
                      "xmlsec1", signed_parts="assertion", user=COMMENT_USER, xmlsec1_expect="ok"))

        s = Spec("valid_expired_pinned_cert", user=ADELE)
        self.add(Case("valid_expired_pinned_cert.xml", "valid", B.assertion_signed_signxml(s, k["idp_expired"]),
                      "signed (signxml) by a key whose pinned certificate expired on 2020-01-01 "
                      "(idp_metadata_expired_cert.xml): a pinned cert past not-after still verifies",
                      "signxml", metadata="idp_metadata_expired_cert.xml", signed_parts="assertion", user=ADELE,
                      xmlsec1_expect="ok"))

        s = Spec("valid_no_destination", user=ADELE, destination=None, in_response_to=None)
        self.add(Case("valid_no_destination.xml", "valid", B.assertion_signed_signxml(s),
                      "IdP-initiated, Response has no Destination attribute (optional in SAML Core) (signxml)",
                      "signxml", signed_parts="assertion", user=ADELE, in_response_to=None, xmlsec1_expect="ok"))

        s = Spec("valid_main_20_groups", user=MAIN, millis=True, issue=T_ISSUE.replace(microsecond=483000))
        main = B.assertion_signed_xmlsec1(s)
        self.main = main
        self.add(Case("valid_main_20_groups.xml", "valid", main,
                      "the main case: MFA user with 20 groups and 2 app roles, timestamps with milliseconds as Entra "
                      "writes them (09:59:50.483Z), Entra-style unprefixed Signature (xmlsec1)",
                      "xmlsec1", signed_parts="assertion", user=MAIN, xmlsec1_expect="ok"))

        s = Spec("valid_pretty_printed", user=ADELE)
        self.add(Case("valid_pretty_printed.xml", "valid", B.assertion_signed_xmlsec1(s, pretty=True, style="ds"),
                      "the whole Response (signature template included) was indented BEFORE signing (xmlsec1): "
                      "whitespace text nodes are part of the signed content and of SignedInfo",
                      "xmlsec1", signed_parts="assertion", user=ADELE, xmlsec1_expect="ok"))

        s = Spec("sha1_rsa_sha1", user=ADELE)
        sha1 = B.assertion_signed_xmlsec1(s, sig_alg="rsa-sha1", digest="sha1")
        self.add(Case("sha1_rsa_sha1.xml", "valid", sha1,
                      "rsa-sha1 signature and sha1 digest (xmlsec1; signxml refuses SHA-1), accepted because "
                      "allow_sha1 is true",
                      "xmlsec1", signed_parts="assertion", user=ADELE, allow_sha1=True, xmlsec1_expect="ok"))
        self.add(Case("sha1_rsa_sha1.xml", "saml.sha1_forbidden", sha1,
                      "the same rsa-sha1/sha1 response with allow_sha1 false", "xmlsec1",
                      signed_parts="assertion", allow_sha1=False, xmlsec1_expect="ok", write=False))

        # base64 forms of two valid cases (the SAMLResponse form value as posted: one line, no newline)
        self.add(Case("valid_main_20_groups.b64", "valid", base64.b64encode(main),
                      "base64 (as posted in the SAMLResponse form field) of valid_main_20_groups.xml",
                      "xmlsec1", signed_parts="assertion", user=MAIN, xmlsec1_expect="ok"))
        signxml_doc = (self.out / "valid_assertion_signxml.xml").read_bytes()
        self.add(Case("valid_assertion_signxml.b64", "valid", base64.b64encode(signxml_doc),
                      "base64 (as posted) of valid_assertion_signxml.xml",
                      "signxml", signed_parts="assertion", user=ADELE, xmlsec1_expect="ok"))

    # ---- invalid: signature/trust -------------------------------------
    def invalid_cases(self):
        k = self.k
        B = self

        s = Spec("invalid_unsigned")
        self.add(Case("invalid_unsigned.xml", "saml.unsigned", B.response(s),
                      "well-formed Entra-shaped response without any Signature", "none", signed_parts="none"))

        s = Spec("invalid_attacker_signed_own_cert")
        self.add(Case("invalid_attacker_signed_own_cert.xml", "saml.cert_untrusted",
                      B.assertion_signed_signxml(s, k["attacker"]),
                      "signed (signxml) by the attacker's key with the attacker's self-signed cert (same subject CN as "
                      "Entra's) in KeyInfo: a cert not in the metadata is never a trust anchor",
                      "signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        s = Spec("invalid_attacker_cert_in_roledescriptor")
        self.add(Case("invalid_attacker_cert_in_roledescriptor.xml", "saml.cert_untrusted",
                      B.assertion_signed_signxml(s, k["attacker"]),
                      "attacker-signed (signxml) with its cert in KeyInfo; idp_metadata_roledescriptor_trap.xml lists "
                      "that cert in the WS-Fed RoleDescriptors only (not in IDPSSODescriptor): SAML trust must come "
                      "from the IDPSSODescriptor's KeyDescriptors alone",
                      "signxml", metadata="idp_metadata_roledescriptor_trap.xml", signed_parts="assertion",
                      xmlsec1_expect="fail"))

        s = Spec("invalid_attacker_signed_no_keyinfo")
        self.add(Case("invalid_attacker_signed_no_keyinfo.xml", "saml.signature_invalid",
                      B.assertion_signed_xmlsec1(s, k["attacker"], key_info=False),
                      "signed by the attacker's key with NO KeyInfo (xmlsec1): no trusted key verifies it",
                      "xmlsec1", signed_parts="assertion", xmlsec1_expect="fail"))

        s = Spec("invalid_weak_rsa1024")
        self.add(Case("invalid_weak_rsa1024.xml", "saml.key_too_weak",
                      B.assertion_signed_signxml(s, k["idp_weak"]),
                      "validly signed (signxml) with the RSA-1024 key that idp_metadata_weak.xml pins; below the "
                      "2048-bit minimum",
                      "signxml", metadata="idp_metadata_weak.xml", signed_parts="assertion", xmlsec1_expect="ok"))

        base = B.assertion_signed_signxml(Spec("invalid_tampered_attribute"))
        root = parse(base)
        vals = root.xpath("//a:Attribute[@Name=$n]/a:AttributeValue", namespaces={"a": A}, n=C_GROUPS)
        vals[0].text = ADMIN_GROUP
        self.add(Case("invalid_tampered_attribute.xml", "saml.digest_mismatch", to_bytes(root),
                      "signed by signxml, then the first groups value was replaced by an admin group id: the "
                      "SignedInfo signature holds, the Assertion digest does not",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        base = B.assertion_signed_signxml(Spec("invalid_tampered_signature_value"))
        root = parse(base)
        sv = root.find(f".//{{{DS}}}SignatureValue")
        sv.text = flip_b64_char(sv.text, 40)
        self.add(Case("invalid_tampered_signature_value.xml", "saml.signature_invalid", to_bytes(root),
                      "signed by signxml, then one base64 character in the middle of SignatureValue was changed",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        base = B.assertion_signed_signxml(Spec("invalid_tampered_digest_value"))
        root = parse(base)
        dv = root.find(f".//{{{DS}}}DigestValue")
        dv.text = flip_b64_char(dv.text, 10)
        self.add(Case("invalid_tampered_digest_value.xml", "saml.signature_invalid", to_bytes(root),
                      "signed by signxml, then one character of DigestValue was changed: SignedInfo changed, so the "
                      "signature over SignedInfo fails (fedgate checks it BEFORE the digest; xmlsec1, which checks "
                      "the references first, reports a digest mismatch)",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        # ---- SAML conditions (all properly signed) ----------------------
        s = Spec("invalid_expired", issue=T_ISSUE - dt.timedelta(hours=2))
        self.add(Case("invalid_expired.xml", "saml.expired", B.assertion_signed_signxml(s),
                      "issued 07:59:50Z: Conditions NotOnOrAfter 08:59:50Z and SubjectConfirmationData NotOnOrAfter "
                      "08:04:50Z are long past at now=10:00:00Z (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_not_yet_valid", issue=T_ISSUE + dt.timedelta(hours=2))
        self.add(Case("invalid_not_yet_valid.xml", "saml.not_yet_valid", B.assertion_signed_signxml(s),
                      "issued 11:59:50Z: Conditions NotBefore is ~2 h after now (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_wrong_audience", audience=OTHER_SP_ENTITY_ID)
        self.add(Case("invalid_wrong_audience.xml", "saml.audience_mismatch", B.assertion_signed_signxml(s),
                      f"Audience is {OTHER_SP_ENTITY_ID} (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_wrong_recipient", recipient=OTHER_ACS_URL)
        self.add(Case("invalid_wrong_recipient.xml", "saml.recipient_mismatch", B.assertion_signed_signxml(s),
                      f"SubjectConfirmationData Recipient is {OTHER_ACS_URL}; Destination is right (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_wrong_destination", destination=OTHER_ACS_URL)
        self.add(Case("invalid_wrong_destination.xml", "saml.destination_mismatch", B.both_signed_xmlsec1(s),
                      f"Response Destination is {OTHER_ACS_URL}; Recipient is right; Response and Assertion both "
                      "signed (xmlsec1) so the Destination is covered by a signature",
                      "xmlsec1", signed_parts="both", xmlsec1_expect="ok"))

        s = Spec("invalid_wrong_issuer", issuer=OTHER_ISSUER, tenant_claim=OTHER_TENANT)
        self.add(Case("invalid_wrong_issuer.xml", "saml.issuer_mismatch", B.both_signed_xmlsec1(s),
                      f"signed by the trusted key (xmlsec1, both), but Issuer (Response and Assertion) is another "
                      f"tenant {OTHER_ISSUER} (its tenantid claim matches that other tenant)",
                      "xmlsec1", signed_parts="both", xmlsec1_expect="ok"))

        msg = ("AADSTS50105: Your administrator has configured the application fedgate-contoso "
               "('c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f') to block users unless they are specifically granted "
               "('assigned') access to the application. The signed in user 'adele.vance@contoso.example' is blocked "
               "because they are not a direct member of a group with access, nor had access directly assigned by an "
               "administrator. Please contact your administrator to assign access to this application.\n"
               "Trace ID: 3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9\nCorrelation ID: 8e7d6c5b-4a39-4281-9f0e-d1c2b3a49586\n"
               "Timestamp: 2026-03-02 09:59:50Z")
        s = Spec("invalid_status_requester", include_assertion=False, status=(ST_REQUESTER, ST_REQUEST_DENIED, msg))
        self.add(Case("invalid_status_requester.xml", "saml.status_error", B.response_signed_xmlsec1(s),
                      "StatusCode Requester / RequestDenied with an AADSTS50105 StatusMessage, no Assertion; the "
                      "Response is signed (xmlsec1)",
                      "xmlsec1", signed_parts="response", xmlsec1_expect="ok"))

        s = Spec("invalid_no_audience_restriction", audience_restriction=False)
        self.add(Case("invalid_no_audience_restriction.xml", "saml.audience_mismatch", B.assertion_signed_signxml(s),
                      "Conditions without AudienceRestriction (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_no_conditions", conditions=False)
        self.add(Case("invalid_no_conditions.xml", "saml.conditions_missing", B.assertion_signed_signxml(s),
                      "no Conditions element (signxml)", "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_no_bearer_confirmation", confirmation_method=CM_SENDER_VOUCHES)
        self.add(Case("invalid_no_bearer_confirmation.xml", "saml.subject_confirmation_missing",
                      B.assertion_signed_signxml(s),
                      "the only SubjectConfirmation has Method sender-vouches, not bearer (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_missing_nameid", nameid=False)
        self.add(Case("invalid_missing_nameid.xml", "saml.subject_missing", B.assertion_signed_signxml(s),
                      "Subject has a bearer SubjectConfirmation but no NameID (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_no_authn_statement", authn_statement=False)
        self.add(Case("invalid_no_authn_statement.xml", "saml.authn_statement_missing", B.assertion_signed_signxml(s),
                      "no AuthnStatement (signxml)", "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        attrs = entra_attributes(ADELE)
        attrs.insert(2, (C_OID, [EVIL_USER.oid]))
        s = Spec("invalid_duplicate_objectidentifier", attributes=attrs)
        self.add(Case("invalid_duplicate_objectidentifier.xml", "saml.duplicate_attribute",
                      B.assertion_signed_signxml(s),
                      "two Attribute elements named objectidentifier with different values, signed (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_tid_mismatch", tenant_claim=OTHER_TENANT)
        self.add(Case("invalid_tid_mismatch.xml", "saml.tid_mismatch", B.assertion_signed_signxml(s),
                      f"Issuer is {ISSUER} but the tenantid claim is {OTHER_TENANT}; properly signed (signxml)",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        s = Spec("invalid_in_response_to_mismatch", in_response_to=OTHER_REQUEST_ID)
        self.add(Case("invalid_in_response_to_mismatch.xml", "saml.in_response_to_mismatch",
                      B.both_signed_xmlsec1(s),
                      f"Response and SubjectConfirmationData InResponseTo={OTHER_REQUEST_ID}, but fedgate sent "
                      f"{REQUEST_ID} (index in_response_to); both signed (xmlsec1)",
                      "xmlsec1", signed_parts="both", in_response_to=REQUEST_ID, xmlsec1_expect="ok"))

        # ---- not a SAML 2.0 Response ------------------------------------
        self.add(Case("invalid_saml11_response.xml", "saml.not_a_response", self.saml11_response(),
                      "a SAML 1.1 Response (urn:oasis:names:tc:SAML:1.0:protocol, MajorVersion 1 MinorVersion 1) with "
                      "a SAML 1.1 Assertion signed by the trusted key (xmlsec1, Reference to AssertionID; the xmlsec1 "
                      "check registers AssertionID/ResponseID)",
                      "xmlsec1", signed_parts="assertion", xmlsec1_expect="ok", id_attrs=list(SAML1_ID_ATTRS)))

        s = Spec("invalid_bare_assertion")
        bare = build_assertion(s)
        tmpl_doc = to_bytes(bare)
        self.add(Case("invalid_bare_assertion.xml", "saml.not_a_response",
                      sign_xmlsec1(tmpl_doc, s.aid(), k["idp_current"]),
                      "a validly signed (xmlsec1) saml:Assertion as the document root, without a Response",
                      "xmlsec1", signed_parts="assertion", xmlsec1_expect="ok"))

        self.add(Case("invalid_encrypted_assertion.xml", "saml.encrypted_assertion_unsupported",
                      self.encrypted_assertion_response(),
                      "Response (signed, xmlsec1) carrying an EncryptedAssertion (xenc:EncryptedData aes256-cbc with "
                      "an rsa-oaep EncryptedKey); the ciphertext is random bytes",
                      "xmlsec1", signed_parts="response", xmlsec1_expect="ok"))

        # ---- CVE-2018-7340 comment-suffix shape -------------------------
        s = Spec("invalid_comment_suffix_cve_2018_7340", user=A_USER)
        base = B.assertion_signed_signxml(s)
        assert verify_ok(base, [k["idp_current"]])
        root = parse(base)
        nid = root.find(f".//{{{A}}}NameID")
        assert nid.text == "a@contoso.example"
        c = etree.Comment(" ")
        c.tail = ".evil.example"
        nid.append(c)
        self.add(Case("invalid_comment_suffix_cve_2018_7340.xml", "saml.digest_mismatch", to_bytes(root),
                      "signed (signxml) with NameID a@contoso.example, then changed to "
                      "'a@contoso.example<!-- -->.evil.example': the text after the comment is content, so the digest "
                      "fails (a parser that reads only the first text node would see the signed value)",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

    def saml11_response(self) -> bytes:
        kp = self.k["idp_current"]
        rid = det_id("saml11", "response")
        aid = det_id("saml11", "assertion")
        t = T_ISSUE
        resp = etree.Element(q(SAML1_P, "Response"), nsmap={"samlp": SAML1_P, "saml": SAML1_A})
        for k_, v in [("ResponseID", rid), ("MajorVersion", "1"), ("MinorVersion", "1"),
                      ("IssueInstant", ts(t)), ("Recipient", ACS_URL), ("InResponseTo", REQUEST_ID)]:
            resp.set(k_, v)
        st = etree.SubElement(resp, q(SAML1_P, "Status"))
        etree.SubElement(st, q(SAML1_P, "StatusCode"), Value="samlp:Success")
        asrt = etree.SubElement(resp, q(SAML1_A, "Assertion"))
        for k_, v in [("AssertionID", aid), ("MajorVersion", "1"), ("MinorVersion", "1"),
                      ("Issuer", ISSUER), ("IssueInstant", ts(t))]:
            asrt.set(k_, v)
        cond = etree.SubElement(asrt, q(SAML1_A, "Conditions"), NotBefore=ts(t),
                                NotOnOrAfter=ts(t + dt.timedelta(hours=1)))
        arc = etree.SubElement(cond, q(SAML1_A, "AudienceRestrictionCondition"))
        etree.SubElement(arc, q(SAML1_A, "Audience")).text = SP_ENTITY_ID
        ast = etree.SubElement(asrt, q(SAML1_A, "AuthenticationStatement"),
                               AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password",
                               AuthenticationInstant=ts(t - dt.timedelta(seconds=98)))
        subj = etree.SubElement(ast, q(SAML1_A, "Subject"))
        etree.SubElement(subj, q(SAML1_A, "NameIdentifier"),
                         Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress").text = ADELE.upn
        scf = etree.SubElement(subj, q(SAML1_A, "SubjectConfirmation"))
        etree.SubElement(scf, q(SAML1_A, "ConfirmationMethod")).text = "urn:oasis:names:tc:SAML:1.0:cm:bearer"
        ats = etree.SubElement(asrt, q(SAML1_A, "AttributeStatement"))
        subj2 = etree.SubElement(ats, q(SAML1_A, "Subject"))
        etree.SubElement(subj2, q(SAML1_A, "NameIdentifier"),
                         Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress").text = ADELE.upn
        for name, values in entra_attributes(ADELE)[:2]:
            ns_, _, local = name.rpartition("/")
            at = etree.SubElement(ats, q(SAML1_A, "Attribute"), AttributeName=local, AttributeNamespace=ns_)
            for v in values:
                etree.SubElement(at, q(SAML1_A, "AttributeValue")).text = v
        # SAML 1.1: the Signature is the last child of the Assertion
        tmpl = signature_template("rsa-sha256", "sha256", "#" + aid, style="ds")
        asrt.append(tmpl)
        return xmlsec1_sign_template(to_bytes(resp), kp, id_attrs=SAML1_ID_ATTRS)

    def encrypted_assertion_response(self) -> bytes:
        import hashlib
        s = Spec("invalid_encrypted_assertion", include_assertion=False)
        resp = build_response(s)
        ea = etree.SubElement(resp, q(A, "EncryptedAssertion"), nsmap={None: A})
        seed = hashlib.sha512(b"fedgate fixture: not a real ciphertext").digest()
        rnd = (seed * 40)[:2048]
        ed = etree.SubElement(ea, q(XENC, "EncryptedData"), nsmap={"xenc": XENC},
                              Type="http://www.w3.org/2001/04/xmlenc#Element")
        ed.set("Id", det_id("encdata"))
        etree.SubElement(ed, q(XENC, "EncryptionMethod"), Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc")
        ki = etree.SubElement(ed, q(DS, "KeyInfo"), nsmap={"ds": DS})
        ek = etree.SubElement(ki, q(XENC, "EncryptedKey"))
        em = etree.SubElement(ek, q(XENC, "EncryptionMethod"), Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p")
        etree.SubElement(em, q(DS, "DigestMethod"), Algorithm="http://www.w3.org/2000/09/xmldsig#sha1")
        cd = etree.SubElement(ek, q(XENC, "CipherData"))
        etree.SubElement(cd, q(XENC, "CipherValue")).text = base64.b64encode(rnd[:256]).decode()
        cd = etree.SubElement(ed, q(XENC, "CipherData"))
        etree.SubElement(cd, q(XENC, "CipherValue")).text = base64.b64encode(rnd[256:256 + 1984]).decode()
        return sign_xmlsec1(to_bytes(resp), s.rid(), self.k["idp_current"])

    # ---- XML-level attacks --------------------------------------------
    def xml_attack_cases(self):
        k = self.k
        B = self
        src = (self.out / "valid_assertion_xmlsec1.xml").read_bytes()
        assert src.startswith(b'<?xml version="1.0"?>\n')
        body = src[len(b'<?xml version="1.0"?>\n'):]
        display = ALEX.display.encode()
        assert body.count(b">" + display + b"<") == 1

        doc = (b'<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n<!ENTITY displayname "' + display + b'">\n]>\n'
               + body.replace(b">" + display + b"<", b">&displayname;<"))
        self.add(Case("invalid_doctype_internal_entity.xml", "saml.doctype_forbidden", doc,
                      "valid_assertion_xmlsec1.xml with a DOCTYPE whose internal entity &displayname; expands to the "
                      "signed display name, so after entity expansion the signature holds (checked by this script "
                      "with lxml expansion + xmlsec1); xmlsec1 itself does not expand entities and fails in C14N on "
                      "the entity reference. Any DOCTYPE is refused",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", in_response_to=None,
                      xmlsec1_expect="fail"))
        expanded = etree.tostring(etree.fromstring(doc, etree.XMLParser(resolve_entities=True, no_network=True)))
        assert b"<!DOCTYPE" not in expanded and verify_ok(expanded, [k["idp_current"]])

        doc = (b'<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
               + body.replace(b">" + display + b"<", b">&xxe;<"))
        self.add(Case("invalid_xxe_external_entity.xml", "saml.doctype_forbidden", doc,
                      "XXE: external entity SYSTEM \"file:///etc/passwd\" referenced from the displayname value",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", in_response_to=None,
                      xmlsec1_expect="skip"))

        lol = [b'<!ENTITY lol "lol">']
        lol.append(b'<!ENTITY lol1 "' + b"&lol;" * 10 + b'">')
        for i in range(2, 10):
            lol.append(b'<!ENTITY lol%d "' % i + (b"&lol%d;" % (i - 1)) * 10 + b'">')
        doc = (b'<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n' + b"\n".join(lol) + b"\n]>\n"
               + body.replace(b">" + display + b"<", b">&lol9;<"))
        self.add(Case("invalid_billion_laughs.xml", "saml.doctype_forbidden", doc,
                      "billion laughs: nested internal entities (10^9 'lol') referenced from the displayname value",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", in_response_to=None,
                      xmlsec1_expect="skip"))

        self.add(Case("invalid_truncated.xml", "saml.xml_malformed", self.main[: len(self.main) // 2],
                      "valid_main_20_groups.xml cut in half (first half of the bytes)",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", xmlsec1_expect="skip"))

        pad_attrs = entra_attributes(ADELE) + [("https://fedgate.example.test/claims/padding", ["A" * (600 * 1024)])]
        s = Spec("invalid_oversized", attributes=pad_attrs)
        big = B.assertion_signed_signxml(s)
        assert len(big) > MAX_BYTES
        self.add(Case("invalid_oversized.xml", "saml.too_large", big,
                      f"a validly signed (signxml) response with a 600 KiB padding attribute: {len(big)} bytes > "
                      f"512 KiB, refused before parsing",
                      "signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        good = base64.b64encode((self.out / "valid_assertion_signxml.xml").read_bytes()).decode()
        mid = len(good) // 2
        bad = good[:mid] + "*%$!" + good[mid:-1]  # characters outside the alphabet, and a length that is not 4n
        self.add(Case("invalid_base64.b64", "saml.base64_invalid", bad.encode(),
                      "base64 of valid_assertion_signxml.xml with '*%$!' inserted in the middle and the last "
                      "character dropped (not in the base64 alphabet, and bad padding)",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="skip"))

    # ---- XML signature wrapping ---------------------------------------
    def evil_assertion(self, name: str, assertion_id: Optional[str] = None) -> etree._Element:
        s = Spec(name, user=EVIL_USER, assertion_id=assertion_id)
        return build_assertion(s)

    def xsw_cases(self):
        k = self.k
        B = self
        cur = [k["idp_current"]]
        NSX = {"a": A, "p": P, "ds": DS}

        def base_assertion_signed(name, tool="signxml"):
            s = Spec(name)
            doc = B.assertion_signed_signxml(s) if tool == "signxml" else B.assertion_signed_xmlsec1(s)
            assert verify_ok(doc, cur)
            return s, parse(doc)

        def signed_assertion(root, s):
            return by_id(root, s.aid())

        # W1: evil assertion BEFORE the signed one
        s, root = base_assertion_signed("xsw_evil_assertion_before")
        signed = signed_assertion(root, s)
        signed.addprevious(self.evil_assertion("xsw_evil_assertion_before/evil"))
        self.add(Case("xsw_evil_assertion_before.xml", "saml.multiple_assertions", to_bytes(root),
                      "signed Assertion (signxml) left intact; an unsigned evil Assertion (admin@contoso.example) "
                      "inserted BEFORE it",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        # W2: evil after
        s, root = base_assertion_signed("xsw_evil_assertion_after", "xmlsec1")
        signed = signed_assertion(root, s)
        signed.addnext(self.evil_assertion("xsw_evil_assertion_after/evil"))
        self.add(Case("xsw_evil_assertion_after.xml", "saml.multiple_assertions", to_bytes(root),
                      "signed Assertion (xmlsec1) intact; an unsigned evil Assertion appended AFTER it",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", xmlsec1_expect="ok"))

        # W3: signed assertion moved into samlp:Extensions, evil assertion in its place
        s, root = base_assertion_signed("xsw_signed_in_extensions_evil_in_place")
        signed = signed_assertion(root, s)
        evil = self.evil_assertion("xsw_signed_in_extensions_evil_in_place/evil")
        signed.addprevious(evil)
        ext = etree.Element(q(P, "Extensions"))
        root.find(f"{{{A}}}Issuer").addnext(ext)
        ext.append(signed)
        self.add(Case("xsw_signed_in_extensions_evil_in_place.xml", "saml.multiple_assertions", to_bytes(root),
                      "XSW7 shape: the signed Assertion (signxml) moved into samlp:Extensions; an unsigned evil "
                      "Assertion stands where it was",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="ok"))

        # W4: signed assertion moved into the ds:Object of the evil assertion's Signature
        s, root = base_assertion_signed("xsw_signed_in_evil_signature_object")
        signed = signed_assertion(root, s)
        sig = direct_signature(signed)
        remove_keep_tail(sig)  # the enveloped transform removed it anyway: the digest still matches
        evil = self.evil_assertion("xsw_signed_in_evil_signature_object/evil")
        obj = etree.SubElement(sig, q(DS, "Object"))
        signed.addprevious(evil)
        obj.append(signed)
        insert_after_issuer(evil, sig)
        self.add(Case("xsw_signed_in_evil_signature_object.xml", "saml.multiple_assertions", to_bytes(root),
                      "XSW8 shape: evil Assertion in place, carrying the original ds:Signature (signxml) with a "
                      "ds:Object that holds the original Assertion minus its Signature; the Reference resolves into "
                      "the Object. A verifier that implements enveloped-signature as 'drop the ds:Signature child of "
                      "the referenced element' gets a matching digest; by the spec (xmlsec1) the enveloped transform "
                      "removes the ancestor Signature, i.e. everything, so xmlsec1 reports a digest mismatch",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        # W5: signed assertion moved into Extensions, nothing in its place
        s, root = base_assertion_signed("xsw_signed_in_extensions_only", "xmlsec1")
        signed = signed_assertion(root, s)
        ext = etree.Element(q(P, "Extensions"))
        root.find(f"{{{A}}}Issuer").addnext(ext)
        ext.append(signed)
        self.add(Case("xsw_signed_in_extensions_only.xml", "saml.assertion_misplaced", to_bytes(root),
                      "the signed Assertion (xmlsec1, intact) moved into samlp:Extensions, no Assertion as a direct "
                      "child of the Response",
                      "crafted", base_signer="xmlsec1", signed_parts="assertion", xmlsec1_expect="ok"))

        # W6: duplicate IDs
        s, root = base_assertion_signed("xsw_duplicate_id")
        signed = signed_assertion(root, s)
        signed.addprevious(self.evil_assertion("xsw_duplicate_id/evil", assertion_id=s.aid()))
        self.add(Case("xsw_duplicate_id.xml", "saml.duplicate_id", to_bytes(root),
                      "an unsigned evil Assertion carrying the SAME ID as the signed one (signxml) is inserted "
                      "before it (checked before the assertion count); xmlsec1 refuses the duplicate ID",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        # W7: signed Response wrapped in an evil Response's Extensions
        s = Spec("xsw_response_wrapped")
        orig = B.response_signed_xmlsec1(s)
        assert verify_ok(orig, cur)
        orig_root = parse(orig)
        es = Spec("xsw_response_wrapped/evil", user=EVIL_USER)
        evil_resp = build_response(es)
        ext = etree.Element(q(P, "Extensions"))
        evil_resp.find(f"{{{A}}}Issuer").addnext(ext)
        ext.append(orig_root)
        self.add(Case("xsw_response_wrapped_in_evil_response.xml", "saml.multiple_assertions", to_bytes(evil_resp),
                      "XSW1 shape: a validly signed Response (Response-only signature, xmlsec1) placed inside the "
                      "samlp:Extensions of a new unsigned evil Response that carries an unsigned evil Assertion",
                      "crafted", base_signer="xmlsec1", signed_parts="response", xmlsec1_expect="ok"))

        # W8: extra unsigned assertion after a signed Response's assertion
        s = Spec("xsw_extra_assertion_signed_response")
        orig = B.response_signed_xmlsec1(s)
        root = parse(orig)
        by_id(root, s.aid()).addnext(self.evil_assertion("xsw_extra_assertion_signed_response/evil"))
        self.add(Case("xsw_extra_assertion_after_signed_response.xml", "saml.multiple_assertions", to_bytes(root),
                      "Response-only signature (xmlsec1); an unsigned evil Assertion appended after the Response's "
                      "Assertion (this also breaks the Response digest; the assertion count is checked first)",
                      "crafted", base_signer="xmlsec1", signed_parts="response", xmlsec1_expect="fail"))

        # W9: a second ds:Signature child on the assertion
        s, root = base_assertion_signed("xsw_second_signature")
        signed = signed_assertion(root, s)
        sig = direct_signature(signed)
        sig.addnext(copy.deepcopy(sig))
        self.add(Case("xsw_second_signature_on_assertion.xml", "saml.signature_multiple", to_bytes(root),
                      "signed by signxml, then the ds:Signature was duplicated: the Assertion has two ds:Signature "
                      "children",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        # W10: the Response's signature references the Assertion's ID
        s = Spec("xsw_reference_other_element")
        doc = sign_xmlsec1(B.response(s), s.rid(), k["idp_current"], ref_uri="#" + s.aid())
        self.add(Case("xsw_reference_to_assertion_from_response.xml", "saml.reference_invalid", doc,
                      "a ds:Signature placed in the Response (after its Issuer) whose Reference URI is the "
                      "ASSERTION's ID; cryptographically valid (xmlsec1) but it does not sign its parent",
                      "xmlsec1", signed_parts="response", xmlsec1_expect="ok"))

        # W11: Reference URI=""
        s = Spec("xsw_reference_uri_empty")
        doc = sign_xmlsec1(B.response(s), s.rid(), k["idp_current"], ref_uri="")
        self.add(Case("xsw_reference_uri_empty.xml", "saml.reference_invalid", doc,
                      "Response signature with Reference URI=\"\" (whole document; enveloped + exc-c14n), "
                      "cryptographically valid (xmlsec1)",
                      "xmlsec1", signed_parts="response", xmlsec1_expect="ok"))

        # W12a: XPath transform added after signing
        s, root = base_assertion_signed("xsw_xpath_transform_added")
        sig = direct_signature(signed_assertion(root, s))
        trs = sig.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms")
        t = etree.Element(q(DS, "Transform"), Algorithm=XPATH_TRANSFORM)
        xp = etree.SubElement(t, q(DS, "XPath"))
        xp.text = "not(ancestor-or-self::ds:Signature)"
        trs.insert(1, t)
        self.add(Case("xsw_extra_xpath_transform_added.xml", "saml.transform_unsupported", to_bytes(root),
                      "signed by signxml, then an XPath transform was inserted between enveloped-signature and "
                      "exc-c14n (SignedInfo changed, so the signature is broken too; the profile check comes first)",
                      "crafted", base_signer="signxml", signed_parts="assertion", xmlsec1_expect="fail"))

        # W12b: XPath transform, signed that way (signature intact)
        s = Spec("xsw_xpath_transform_signed")
        doc = B.assertion_signed_xmlsec1(s, style="ds", xpath_transform=True)
        self.add(Case("xsw_extra_xpath_transform_signed.xml", "saml.transform_unsupported", doc,
                      "signed by xmlsec1 WITH transforms enveloped-signature, XPath "
                      "not(ancestor-or-self::ds:Signature), exc-c14n: the signature is cryptographically valid, "
                      "only the profile refuses the transform",
                      "xmlsec1", signed_parts="assertion", xmlsec1_expect="ok"))

        # W13: HMAC key confusion
        s = Spec("xsw_hmac_key_confusion")
        doc = B.assertion_signed_xmlsec1(s, sig_alg="hmac-sha256", key_info=False,
                                         hmac_key=k["idp_current"].cert_path)
        self.add(Case("xsw_hmac_sha256_key_confusion.xml", "saml.algorithm_unsupported", doc,
                      "SignatureMethod hmac-sha256, the HMAC keyed with the bytes of the IdP's PUBLIC certificate "
                      "file (keys/idp_current_cert.pem), as an attacker would (xmlsec1 --hmackey); no KeyInfo",
                      "xmlsec1", signed_parts="assertion", xmlsec1_expect="fail"))

    # ---- index ---------------------------------------------------------
    def finish(self) -> list:
        index = []
        problems = []
        for c in self.cases:
            certs = self.metadata_certs[c.metadata]
            data = (self.out / c.file).read_bytes()
            if c.xmlsec1_expect == "skip":
                verdict, detail = None, "not run (document is not well-formed, not base64, or has a DOCTYPE " \
                                        "with external/recursive entities)"
            else:
                payload = decode_if_b64(Path(c.file), data)
                verdict, detail = xmlsec1_verify(payload, certs, id_attrs=c.id_attrs)
                if verdict != c.xmlsec1_expect:
                    problems.append(f"{c.file} ({c.expect}): xmlsec1 says {verdict}, expected {c.xmlsec1_expect}: "
                                    f"{detail}")
            valid = c.expect == "valid"
            u = c.user if valid else None
            entry = {
                "file": c.file,
                "expect": c.expect,
                "subject": u.subject if u else None,
                "object_id": u.oid if u else None,
                "mfa": u.mfa if u else None,
                "groups_count": (0 if u.overage else len(u.groups)) if u else None,
                "groups_overage": u.overage if u else None,
                "metadata": c.metadata,
                "sp_entity_id": SP_ENTITY_ID,
                "acs_url": ACS_URL,
                "now": NOW,
                "allow_sha1": c.allow_sha1,
                "in_response_to": c.in_response_to,
                "signer": c.signer,
                "base_signer": c.base_signer,
                "signed_parts": c.signed_parts,
                "xmlsec1_verify": verdict,
                "xmlsec1_detail": detail,
                "why": c.why,
            }
            assert list(entry) == INDEX_FIELDS
            index.append(entry)
        if problems:
            raise SystemExit("xmlsec1 cross-check failed:\n  " + "\n  ".join(problems))
        (self.out / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
        return index


def assert_prefix_list_matters(doc: bytes, aid: str, prefixes: list) -> None:
    """The digest must match only when the PrefixList is honoured."""
    import hashlib
    root = parse(doc)
    asrt = by_id(root, aid)
    sig = direct_signature(asrt)
    digest = sig.find(f".//{{{DS}}}DigestValue").text.strip()
    asrt.remove(sig)
    def d(p):
        c14n = etree.tostring(asrt, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=p)
        return base64.b64encode(hashlib.sha256(c14n).digest()).decode()
    assert d(prefixes) == digest and d(None) != digest, "PrefixList case does not exercise the PrefixList"


def self_check(out: Path, index: list) -> None:
    """Content checks on the generated files, independent of any signature."""
    def parse_dt(v):
        return dt.datetime.strptime(re.sub(r"\.\d+Z$", "Z", v), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc)
    now = parse_dt(NOW)
    for e in index:
        data = (out / e["file"]).read_bytes()
        try:
            data = decode_if_b64(Path(e["file"]), data)
            root = parse(data)
        except Exception:  # noqa: BLE001 - malformed on purpose
            continue
        if root.tag == q(P, "Response") and e["expect"] != "saml.in_response_to_mismatch":
            assert root.get("InResponseTo") == e["in_response_to"], (e["file"], root.get("InResponseTo"))
        if e["expect"] != "valid":
            continue
        asrts = root.findall(q(A, "Assertion"))
        assert root.tag == q(P, "Response") and len(asrts) == 1, e["file"]
        a = asrts[0]
        assert root.get("Destination") in (None, ACS_URL)
        nid = a.find(f"{{{A}}}Subject/{{{A}}}NameID")
        # the whole text content: comments are not text, the text after them is
        assert all(not isinstance(c.tag, str) or False for c in nid), "NameID has child elements"
        text = (nid.text or "") + "".join(c.tail or "" for c in nid)
        assert text == e["subject"], (e["file"], text)
        attrs = {}
        for at in a.iter(q(A, "Attribute")):
            assert at.get("Name") not in attrs, "duplicate attribute in a valid case"
            attrs[at.get("Name")] = [v.text for v in at.findall(q(A, "AttributeValue"))]
        assert attrs[C_OID] == [e["object_id"]] and attrs[C_TID] == [TENANT]
        assert (AMR_MFA in attrs[C_AMR]) == e["mfa"]
        assert len(attrs.get(C_GROUPS, [])) == e["groups_count"]
        assert (C_GROUPS_LINK in attrs) == e["groups_overage"]
        cond = a.find(q(A, "Conditions"))
        assert parse_dt(cond.get("NotBefore")) <= now < parse_dt(cond.get("NotOnOrAfter"))
        assert cond.find(f"{{{A}}}AudienceRestriction/{{{A}}}Audience").text == SP_ENTITY_ID
        scd = a.find(f".//{{{A}}}SubjectConfirmationData")
        assert scd.get("Recipient") == ACS_URL and now < parse_dt(scd.get("NotOnOrAfter"))
        assert scd.get("InResponseTo") == e["in_response_to"]
        for iss in (root.find(q(A, "Issuer")), a.find(q(A, "Issuer"))):
            assert iss.text == ISSUER


README_HEAD = """# fedgate SAML fixtures (generated)

Generated by `target/test-venv/bin/python scripts/make_saml_fixtures.py` (lxml, signxml, cryptography,
and the `xmlsec1` CLI). Do not edit by hand: change the script and re-run it.
Re-running reproduces every file byte for byte (the keys in `keys/` are kept;
ECDSA uses RFC 6979 deterministic nonces). `--regenerate-keys` makes new keys.

## Scenario

| what | value |
|---|---|
| tenant | `{tenant}` |
| IdP entity id / Issuer | `{issuer}` |
| SSO / SLO endpoint | `{sso}` |
| SP entity id (Audience) | `{sp}` |
| ACS (Destination, Recipient) | `{acs}` |
| now | `{now}` (responses issued 09:59:50Z; Conditions NotBefore = IssueInstant, NotOnOrAfter = +1 h; SubjectConfirmationData NotOnOrAfter = +5 min) |
| AuthnRequest ID fedgate sent (SP-initiated cases) | `{req}` |
| other tenant (issuer / tid mismatches) | `{other}` |

## Keys (`keys/`, TEST ONLY - never trust them anywhere else)

| file | what | validity |
|---|---|---|
| `idp_current_{{key,cert}}.pem` | RSA-2048, Entra's current signing key | 2025-01-01 .. 2035-01-01 |
| `idp_next_{{key,cert}}.pem` | RSA-2048, the next key of a rollover | 2025-01-01 .. 2035-01-01 |
| `idp_ec_{{key,cert}}.pem` | EC P-256 | 2025-01-01 .. 2035-01-01 |
| `idp_weak_{{key,cert}}.pem` | RSA-1024 (too weak) | 2025-01-01 .. 2035-01-01 |
| `idp_expired_{{key,cert}}.pem` | RSA-2048 whose cert has expired | 2019-01-01 .. 2020-01-01 |
| `attacker_{{key,cert}}.pem` | RSA-2048, the attacker | 2025-01-01 .. 2035-01-01 |

Every certificate is self-signed with subject `CN=Microsoft Azure Federated SSO Certificate,
O=fedgate test fixture: <role>` (the attacker's claims the same CN).

## Metadata

Entra-style federation metadata (signed, Signature first, WS-Fed `RoleDescriptor`s
`fed:SecurityTokenServiceType` and `fed:ApplicationServiceType` before the
`IDPSSODescriptor`, as in Entra's real document):

| file | IDPSSODescriptor signing certs | metadata signed by |
|---|---|---|
| `idp_metadata.xml` | current, next | current (xmlsec1, rsa-sha256) |
| `idp_metadata_ec.xml` | EC P-256 | EC key (signxml, ecdsa-sha256) |
| `idp_metadata_weak.xml` | RSA-1024 | weak key (xmlsec1) |
| `idp_metadata_expired_cert.xml` | expired cert | expired key (xmlsec1) |
| `idp_metadata_roledescriptor_trap.xml` | current, next; the attacker's cert appears ONLY in the two RoleDescriptors | current (xmlsec1) |

## index.json

An array; one entry per case (`sha1_rsa_sha1.xml` has two entries: `allow_sha1` true and false).
Every entry has every key:

| key | meaning |
|---|---|
| `file` | file in this directory; `.b64` = the SAMLResponse form value as posted (standard base64, one line) |
| `expect` | `"valid"` or the error code the verifier must return |
| `subject` | valid only (else null): the NameID text content (comments are not text) |
| `object_id` | valid only: the objectidentifier claim |
| `mfa` | valid only: authnmethodsreferences holds `http://schemas.microsoft.com/claims/multipleauthn` |
| `groups_count` | valid only: number of `groups` values (0 with overage) |
| `groups_overage` | valid only: the `groups.link` claim is present instead of `groups` |
| `metadata` | the metadata file to trust |
| `sp_entity_id`, `acs_url`, `now` | verifier settings |
| `allow_sha1` | verifier setting |
| `in_response_to` | the AuthnRequest ID fedgate expects, or null (IdP-initiated / no request) |
| `signer` | `signxml`, `xmlsec1`, `none` (unsigned) or `crafted` (modified after signing) |
| `base_signer` | for `crafted`: the tool that made the signature before the modification |
| `signed_parts` | where the ds:Signature element(s) stand as generated: `assertion`, `response`, `both`, `none` |
| `xmlsec1_verify` | `ok`: every ds:Signature in the document verifies with `xmlsec1 --verify --enabled-key-data rsa (ecdsa for EC) --pubkey-cert-pem <metadata cert> --id-attr:ID ...:Assertion --id-attr:ID ...:Response` (one of the metadata's certs; KeyInfo ignored); `fail`: at least one does not; null: no signature, or not run (malformed / DOCTYPE with external or recursive entities / bad base64) |
| `xmlsec1_detail` | per signature: OK with which cert, or why it failed |
| `why` | what the case is |

## Cases

| file | expect | signer | xmlsec1 | why |
|---|---|---|---|---|
"""


def write_readme(out: Path, index: list) -> None:
    text = README_HEAD.format(tenant=TENANT, issuer=ISSUER, sso=SSO_URL, sp=SP_ENTITY_ID, acs=ACS_URL, now=NOW,
                              req=REQUEST_ID, other=OTHER_TENANT)
    for e in index:
        signer = e["signer"] + (f" ({e['base_signer']})" if e["base_signer"] else "")
        why = e["why"].replace("|", "\\|").replace("\n", " ")
        extra = f" allow_sha1={str(e['allow_sha1']).lower()}" if e["file"].startswith("sha1") else ""
        text += f"| `{e['file']}` | `{e['expect']}`{extra} | {signer} | {e['xmlsec1_verify'] or '-'} | {why} |\n"
    (out / "README.md").write_text(text)


def verify_ok(doc: bytes, certs) -> bool:
    return xmlsec1_verify(doc, certs)[0] == "ok"


def flip_b64_char(text: str, pos: int) -> str:
    chars = list(text)
    # skip whitespace to land on an alphabet character
    while chars[pos] in "\r\n\t =":
        pos += 1
    chars[pos] = "B" if chars[pos] != "B" else "C"
    return "".join(chars)


def signxml_cross_check(out: Path, index: list, keys: dict, meta_certs: dict) -> list:
    """Second opinion on the valid cases from signxml's verifier (not recorded in index.json)."""
    from signxml import XMLVerifier
    from signxml.verifier import SignatureConfiguration
    notes = []
    for e in index:
        if e["expect"] != "valid" or e["allow_sha1"]:
            continue
        data = decode_if_b64(Path(e["file"]), (out / e["file"]).read_bytes())
        ok = False
        for kp in meta_certs[e["metadata"]]:
            # signxml refuses expired certs unless told the time: use a time inside the
            # cert's validity (fedgate pins the key; signxml is a signature-only second opinion here).
            cert = x509.load_pem_x509_certificate(kp.cert_pem)
            cfg = SignatureConfiguration(expect_references=1, ignore_ambiguous_key_info=True,
                                         verification_time=cert.not_valid_before_utc + dt.timedelta(days=1))
            try:
                XMLVerifier().verify(data, x509_cert=kp.cert_pem.decode(), id_attribute="ID", expect_config=cfg)
                ok = True
                break
            except Exception as exc:  # noqa: BLE001
                err = f"{type(exc).__name__}: {exc}"
        notes.append(f"  signxml verify {e['file']}: {'ok' if ok else 'FAIL ' + err}")
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "fixtures" / "saml")
    ap.add_argument("--regenerate-keys", action="store_true")
    args = ap.parse_args()
    if shutil.which("xmlsec1") is None:
        raise SystemExit("xmlsec1 CLI not found (Debian: apt-get install xmlsec1)")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # Remove generated files from a previous run (keys are kept).
    for p in out.iterdir():
        if p.is_file() and p.suffix in (".xml", ".b64", ".json"):
            p.unlink()
    keys = ensure_keys(out / "keys", args.regenerate_keys)
    b = Builder(out, keys)
    b.metadata()
    b.valid_cases()
    b.invalid_cases()
    b.xml_attack_cases()
    b.xsw_cases()
    index = b.finish()
    self_check(out, index)
    write_readme(out, index)
    for line in signxml_cross_check(out, index, keys, b.metadata_certs):
        print(line)
    n_valid = sum(1 for e in index if e["expect"] == "valid")
    print(f"wrote {len(index)} index entries ({n_valid} valid) to {out / 'index.json'}")
    for e in index:
        print(f"  {e['expect']:38} {e['file']:50} signer={e['signer']:8} xmlsec1={e['xmlsec1_verify']}")


if __name__ == "__main__":
    main()
