#!/usr/bin/env python3
"""Test oracle for fedgate's exclusive XML canonicalization (libxml2 via lxml).

Usage:
    target/test-venv/bin/python scripts/c14n_oracle.py [--prefixes "a b"] FILE...
    target/test-venv/bin/python scripts/c14n_oracle.py [--prefixes "a b"] --check-xmlsec1 FILE...

Prints ONE JSON object on stdout:

    { "<file as given>": [ {"index": <int>, "c14n_b64": "<base64>"}, ... ],
      "<file libxml2 refused, or with a DOCTYPE>": {"skipped": "<reason>"}, ... }

For every file, the entries are, in document order and without duplicates:
the document element, every element that carries an unqualified ``ID``,
``Id`` or ``AssertionID`` attribute, and every ``ds:SignedInfo``.

* ``index`` is the 0-based position of the element among ALL elements of the
  document in document order (the document element is 0; comments, PIs and
  text do not count).
* ``c14n_b64`` is the base64 of the Exclusive XML Canonicalization 1.0
  *without comments* (http://www.w3.org/2001/10/xml-exc-c14n#) of that
  element's subtree taken as a document subset, i.e. exactly the bytes an
  XML-DSig ``<Reference URI="#id">`` to that element digests when its only
  transform is exc-c14n (no enveloped-signature transform: a ds:Signature
  inside the element stays in).  Namespace declarations inherited from
  ancestors outside the subset are rendered where visibly utilized (and, for
  ``--prefixes``, where in scope); ``xml:*`` attributes of ancestors are NOT
  inherited (exclusive C14N).  ``--prefixes "xs xsi"`` is the
  InclusiveNamespaces PrefixList and applies to every element.  Use the
  PrefixList of a SignedInfo's CanonicalizationMethod when you compare a
  SignedInfo.  ``#default`` (the default namespace) is accepted, but lxml
  silently drops it before libxml2 sees it (lxml only passes PrefixList
  entries found in the document's name dictionary), so for ``#default`` the
  bytes are taken from libxml2 through libxmlsec1 instead (the
  ``--check-xmlsec1`` harness below); ``--verbose`` marks such entries.

Input handling: a UTF-8 BOM is accepted (libxml2 honours it, and any encoding
declaration).  ``.b64`` / ``.base64`` files are base64-decoded first (ASCII
whitespace ignored, strict alphabet); a file whose content does not start with
``<`` but is valid base64 of something that does is decoded too (the corpus
has extension-less base64 files).  Files are parsed with entity expansion,
DTD loading and network access OFF.  A file libxml2 refuses, or that has a
DOCTYPE, is reported as ``{"skipped": "<reason>"}``.

How this oracle was verified (and can be re-verified: ``--check-xmlsec1``)
-------------------------------------------------------------------------
The concern: ``lxml.etree.tostring(el, method="c14n", exclusive=True, ...)`` on
a NON-root element must canonicalize the subtree *with its inherited
namespace context*.  lxml does this by building a temporary document whose
root is a shallow copy of ``el`` onto which it copies the namespace
declarations of all ancestors (nearest first, ``_copyParentNamespaces``);
libxml2's exclusive C14N then renders only the visibly utilized ones (and the
PrefixList ones).  This was checked against libxmlsec1 (the ``xmlsec1`` CLI,
which parses the file with the system libxml2 2.9.14, not lxml's bundled
libxml2):

1. Small example (by hand, Nov 2026): ``<r:root xmlns:r="urn:r" xmlns:a="urn:a"
   xmlns:unused="urn:u" xmlns="urn:def" xml:lang="en"><a:x ID="e1" a:attr="1"
   b="2"><y>t<!-- c --></y><a:z/></a:x>...`` signed with xmlsec1 (Reference
   ``#e1`` and ``#xpointer((//*)[2])``, transform exc-c14n, sha256): xmlsec1's
   DigestValue and its ``--store-references`` pre-digest bytes
   ``<a:x xmlns:a="urn:a" ID="e1" b="2" a:attr="1"><y xmlns="urn:def">t</y><a:z></a:z></a:x>``
   equal this oracle's bytes and their sha256 (xmlns:a pulled in from the
   ancestor, xmlns:unused and xmlns:r dropped, xml:lang not inherited, the
   comment dropped, the default namespace rendered on <y> where first used).
2. Systematically: ``--check-xmlsec1`` appends to the document element, at
   the byte level (the original bytes are otherwise untouched, so xmlsec1
   parses the same text, BOM and encoding included), a ds:Signature with one
   Reference per oracle entry: ``URI="#xpointer((//*)[index+1])"``,
   transforms [enveloped-signature, only for index 0, to drop the appended
   Signature] + exc-c14n (with the same InclusiveNamespaces PrefixList), signs
   it with ``xmlsec1 --sign --hmackey ... --store-references`` and compares
   every pre-digest buffer byte for byte with the oracle's output.  A
   mismatch makes ``--check-xmlsec1`` exit 1 (and the harness does catch
   one: swapping in inclusive C14N makes every entry mismatch).
   Results (Nov 2026, lxml 6.1.3 / libxml2 2.14.6 vs xmlsec1 1.2.37 /
   libxml2 2.9.14):
   - fixtures/c14n: 15 files, 44 elements, all equal, with no PrefixList,
     with --prefixes "xs xsi" and with --prefixes "p";
   - fixtures/saml: 65 of 70 files parsed (5 skipped on purpose: DOCTYPE x3,
     truncated, bad base64), 200 elements, all equal;
   - tests/corpus (every file except PEM/JSON/JWT/key/text/LICENSE
     files, i.e. 305 files: .xml, .base64, extension-less testdata, .html,
     .url): 272 parsed (98 of them base64-decoded), 587 elements, all equal,
     with no PrefixList and with "xs xsi saml ds"; 33 skipped (8 with a
     DOCTYPE, 25 not XML: query strings, HTML forms, deflated base64,
     undeclared prefixes, a deliberately broken metadata file).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
ID_ATTRS = ("ID", "Id", "AssertionID")
BOM = b"\xef\xbb\xbf"


class Skip(Exception):
    pass


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True,
        huge_tree=False, remove_blank_text=False, remove_comments=False, remove_pis=False,
        strip_cdata=True, recover=False,
    )


def _b64(data: bytes) -> bytes:
    compact = re.sub(rb"[ \t\r\n\f\v]", b"", data)
    return base64.b64decode(compact, validate=True)


def load_bytes(path: Path) -> tuple[bytes, str | None]:
    """The XML bytes of a file (base64-decoded if needed) and a note."""
    raw = path.read_bytes()
    if path.suffix.lower() in (".b64", ".base64"):
        try:
            return _b64(raw), "base64-decoded"
        except (binascii.Error, ValueError) as exc:
            raise Skip(f"invalid base64: {exc}") from None
    head = raw[3:] if raw.startswith(BOM) else raw
    if not head.lstrip().startswith(b"<"):
        try:
            dec = _b64(raw)
        except (binascii.Error, ValueError):
            dec = b""
        dhead = dec[3:] if dec.startswith(BOM) else dec
        if dhead.lstrip().startswith(b"<"):
            return dec, "base64-decoded (detected)"
    return raw, None


_PROLOG_DOCTYPE = re.compile(rb"^(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.S)


def parse(data: bytes) -> etree._ElementTree:
    # Refuse a DOCTYPE before libxml2 even reads its entity declarations.
    if _PROLOG_DOCTYPE.match(data):
        raise Skip("has a DOCTYPE")
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as exc:
        raise Skip(f"libxml2 refused it: {exc}") from None
    except ValueError as exc:
        raise Skip(f"libxml2 refused it: {exc}") from None
    di = tree.docinfo
    if di.doctype or di.internalDTD is not None or di.externalDTD is not None:
        raise Skip("has a DOCTYPE")
    return tree


def selected(tree: etree._ElementTree) -> list[tuple[int, etree._Element]]:
    out = []
    for i, el in enumerate(tree.getroot().iter(tag=etree.Element)):
        if i == 0 or any(a in el.attrib for a in ID_ATTRS) or el.tag == f"{{{DS}}}SignedInfo":
            out.append((i, el))
    return out


def c14n(el: etree._Element, prefixes: list[str] | None) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=prefixes or None)


def oracle(path: Path, prefixes: list[str] | None, verbose: bool = False):
    data, note = load_bytes(path)
    tree = parse(data)
    sel = selected(tree)
    if prefixes and "#default" in prefixes:
        # lxml silently drops "#default" (it only passes PrefixList entries that
        # occur in the document's name dictionary), so libxml2 never sees it.
        # Take libxml2's bytes through libxmlsec1 instead (same harness as
        # --check-xmlsec1, which agrees with lxml byte for byte everywhere else).
        outputs = xmlsec1_c14n(data, tree, [i for i, _ in sel], prefixes)
        note = (note + "; " if note else "") + "c14n by xmlsec1 (#default)"
    else:
        outputs = [c14n(el, prefixes) for _, el in sel]
    entries = []
    for (i, el), out in zip(sel, outputs):
        e = {"index": i, "c14n_b64": base64.b64encode(out).decode()}
        if verbose:
            e["tag"] = el.tag
            ident = next((el.get(a) for a in ID_ATTRS if el.get(a) is not None), None)
            if ident is not None:
                e["id"] = ident
            if note:
                e["input"] = note
        entries.append(e)
    return data, tree, entries


# ----------------------------------------------------------------------------
# --check-xmlsec1: the same bytes, computed by libxmlsec1
# ----------------------------------------------------------------------------

def _signature_xml(indices: list[int], prefixes: list[str] | None) -> bytes:
    refs = []
    for i in indices:
        trs = ""
        if i == 0:
            trs += '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        inc = ""
        if prefixes:
            inc = (f'<InclusiveNamespaces xmlns="{EXC}" PrefixList="{" ".join(prefixes)}"/>')
        trs += f'<Transform Algorithm="{EXC}">{inc}</Transform>'
        refs.append(
            f'<Reference URI="#xpointer((//*)[{i + 1}])"><Transforms>{trs}</Transforms>'
            '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference>'
        )
    return (
        f'<Signature xmlns="{DS}"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{EXC}"/>'
        '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/>'
        + "".join(refs)
        + "</SignedInfo><SignatureValue/></Signature>"
    ).encode()


def _inject(data: bytes, tree: etree._ElementTree, sig: bytes) -> bytes:
    """Insert ``sig`` as the last child of the document element, editing bytes only."""
    root = tree.getroot()
    enc = (tree.docinfo.encoding or "utf-8").lower().replace("_", "-")
    if enc not in ("utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "iso-8859-15", "windows-1252"):
        # not ASCII-compatible: fall back to a serialization by lxml
        root.append(etree.fromstring(sig))
        return etree.tostring(tree, xml_declaration=True, encoding="utf-8")
    qname = root.prefix + ":" + etree.QName(root).localname if root.prefix else etree.QName(root).localname
    # the document element's end tag: the last "</qname  >" in the file
    matches = list(re.finditer(rb"</" + re.escape(qname.encode()) + rb"\s*>", data))
    if matches:
        pos = matches[-1].start()
        return data[:pos] + sig + data[pos:]
    # <root .../> : turn the empty-element tag into start + end tags
    m = None
    for m in re.finditer(rb"/\s*>", data):
        pass
    if m is None:
        raise RuntimeError("cannot locate the document element's end")
    return data[:m.start()] + b">" + sig + b"</" + qname.encode() + b">" + data[m.end():]


class Xmlsec1Error(Exception):
    pass


def xmlsec1_c14n(data: bytes, tree: etree._ElementTree, indices: list[int],
                 prefixes: list[str] | None) -> list[bytes]:
    """libxmlsec1's pre-digest bytes (exc-c14n of each selected element)."""
    if not indices:
        return []
    doc = _inject(data, tree, _signature_xml(indices, prefixes))
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "doc.xml"
        key = Path(td) / "hmac.key"
        out = Path(td) / "out.xml"
        src.write_bytes(doc)
        key.write_bytes(b"fedgate c14n oracle check")
        proc = subprocess.run(
            ["xmlsec1", "--sign", "--hmackey", str(key), "--store-references",
             "--node-xpath", "(//*[local-name()='Signature' and namespace-uri()='%s'])[last()]" % DS,
             "--output", str(out), str(src)],
            capture_output=True,
        )
        signed = out.read_bytes() if proc.returncode == 0 else b""
    if proc.returncode != 0:
        err = [l for l in proc.stderr.decode(errors="replace").splitlines() if l.strip()]
        raise Xmlsec1Error((err[0] if err else "failed")[:300])
    bufs = re.findall(rb"== PreDigest data - start buffer:\n(.*?)\n== PreDigest data - end buffer",
                      proc.stdout, re.S)
    if len(bufs) != len(indices):
        raise Xmlsec1Error(f"{len(bufs)} pre-digest buffers for {len(indices)} references")
    # The DigestValues xmlsec1 wrote must be the sha256 of those buffers (guards
    # against misreading the debug dump).
    sig = etree.fromstring(signed, _parser()).xpath(
        "(//*[local-name()='Signature' and namespace-uri()=$ds])[last()]", ds=DS)[0]
    digests = [d.text.strip() for d in sig.iter(f"{{{DS}}}DigestValue")]
    for buf, dv in zip(bufs, digests):
        if base64.b64encode(hashlib.sha256(buf).digest()).decode() != dv:
            raise Xmlsec1Error("pre-digest buffer does not hash to xmlsec1's DigestValue")
    return bufs


def check_xmlsec1(path: Path, prefixes: list[str] | None) -> dict:
    data, tree, entries = oracle(path, prefixes)
    if not entries:
        return {"checked": 0}
    try:
        bufs = xmlsec1_c14n(data, tree, [e["index"] for e in entries], prefixes)
    except Xmlsec1Error as exc:
        return {"checked": 0, "xmlsec1_error": str(exc)}
    mismatches = []
    for e, buf in zip(entries, bufs):
        mine = base64.b64decode(e["c14n_b64"])
        if mine != buf:
            mismatches.append({"index": e["index"], "oracle": mine[:400].decode("utf-8", "replace"),
                               "xmlsec1": buf[:400].decode("utf-8", "replace")})
    return {"checked": len(entries), "mismatches": mismatches}


def main() -> int:
    ap = argparse.ArgumentParser(description="Exclusive C14N oracle (libxml2 via lxml).")
    ap.add_argument("--prefixes", default="", help='InclusiveNamespaces PrefixList, e.g. "xs xsi"')
    ap.add_argument("--verbose", action="store_true", help="add tag/id to each entry (not part of the contract)")
    ap.add_argument("--check-xmlsec1", action="store_true",
                    help="instead of the oracle output, compare every entry with xmlsec1's pre-digest bytes")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    prefixes = args.prefixes.split() or None

    result: dict = {}
    if args.check_xmlsec1 and prefixes and "#default" in prefixes:
        ap.error('--check-xmlsec1 with "#default" would compare xmlsec1 with itself (see the docstring)')
    if args.check_xmlsec1:
        totals = {"files": 0, "elements_checked": 0, "files_skipped": 0, "files_xmlsec1_error": 0,
                  "files_with_mismatch": 0}
        for f in args.files:
            try:
                r = check_xmlsec1(Path(f), prefixes)
            except Skip as s:
                r = {"skipped": str(s)}
                totals["files_skipped"] += 1
            else:
                totals["files"] += 1
                totals["elements_checked"] += r.get("checked", 0)
                if r.get("xmlsec1_error"):
                    totals["files_xmlsec1_error"] += 1
                if r.get("mismatches"):
                    totals["files_with_mismatch"] += 1
            result[f] = r
        print(json.dumps({"summary": totals, "files": result}, indent=1, ensure_ascii=False))
        return 1 if totals["files_with_mismatch"] else 0

    for f in args.files:
        try:
            _, _, entries = oracle(Path(f), prefixes, args.verbose)
            result[f] = entries
        except Skip as s:
            result[f] = {"skipped": str(s)}
        except OSError as exc:
            result[f] = {"skipped": f"cannot read: {exc}"}
        except Xmlsec1Error as exc:
            result[f] = {"skipped": f"xmlsec1 failed (needed for #default): {exc}"}
    json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
