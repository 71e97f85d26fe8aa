#!/usr/bin/env node
// A console's SAML service provider built on @node-saml/node-saml 5 with its
// default settings (wantAuthnResponseSigned and wantAssertionsSigned both
// true), as an independent peer for fedgate's outgoing SAML.
//
// Usage: NODE_PATH=target/test-node/node_modules node scripts/node_saml_sp.js SETTINGS RESPONSE_FILE
//        NODE_PATH=… node scripts/node_saml_sp.js SETTINGS --login RELAY_STATE
//          (prints {"url"}: an SP-initiated login, node-saml's AuthnRequest
//          by the HTTP-Redirect binding, unsigned, to fedgate's IdP)
// SETTINGS: {"sp_entity_id", "acs_url", "idp_entity_id", "sso_url", "idp_cert" (PEM)}.
// RESPONSE_FILE: the SAMLResponse form value (base64, as posted).
// Prints {"ok": true, "name_id", "issuer", "attributes"} and exits 0, or
// {"ok": false, "error"} and exits 1.
"use strict";
const fs = require("fs");
const { SAML } = require("@node-saml/node-saml");

async function main() {
  const s = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const saml = new SAML({
    callbackUrl: s.acs_url,
    issuer: s.sp_entity_id,
    entryPoint: s.sso_url,
    idpIssuer: s.idp_entity_id,
    idpCert: s.idp_cert,
  });
  if (process.argv[3] === "--login") {
    const url = await saml.getAuthorizeUrlAsync(process.argv[4] || "", undefined, {});
    console.log(JSON.stringify({ ok: true, url }));
    return 0;
  }
  const b64 = fs.readFileSync(process.argv[3], "utf8").trim();
  try {
    const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: b64 });
    const attributes = {};
    for (const [k, v] of Object.entries(profile.attributes || {})) attributes[k] = v;
    console.log(
      JSON.stringify({ ok: true, name_id: profile.nameID, issuer: profile.issuer, attributes })
    );
    return 0;
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e) }));
    return 1;
  }
}

main().then((code) => process.exit(code));
