//! fedgate's SP metadata for one tenant (`GET /saml/{tenant}/metadata`), to
//! upload into Entra ("Upload metadata file"): entity id, ACS, the
//! SingleLogoutService (Entra's "Logout URL") with the certificates
//! fedgate signs its logout messages with, NameID formats, and the
//! encryption certificates (current and next) Entra's token encryption is
//! to use.

use base64::Engine;

/// fedgate's SingleLogoutService for the tenant, and the certificates its
/// logout messages are signed with (fedgate's signing keys: current, next).
#[derive(Debug, Clone, Default)]
pub struct Logout {
    pub url: String,
    pub signing: Vec<crate::trust::certs::TrustedCert>,
}

/// The SP metadata document.
pub fn sp_metadata(
    entity_id: &str,
    acs_url: &str,
    logout: &Logout,
    encryption: &[crate::trust::certs::TrustedCert],
) -> String {
    let esc = crate::xml::escape;
    let signing: String = logout
        .signing
        .iter()
        .map(|c| {
            format!(
                "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
                base64::engine::general_purpose::STANDARD.encode(&c.der)
            )
        })
        .collect();
    let slo = if logout.url.is_empty() {
        String::new()
    } else {
        format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{0}\"/>\
<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{0}\"/>",
            esc(&logout.url)
        )
    };
    let keys: String = encryption
        .iter()
        .map(|c| {
            format!(
                "<md:KeyDescriptor use=\"encryption\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
<md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/><md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/></md:KeyDescriptor>",
                base64::engine::general_purpose::STANDARD.encode(&c.der)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"{}\">\
<md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{signing}{keys}{slo}\
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\
<md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{}\" index=\"0\" isDefault=\"true\"/>\
</md:SPSSODescriptor></md:EntityDescriptor>\n",
        esc(entity_id),
        esc(acs_url)
    )
}
