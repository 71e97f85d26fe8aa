//! SAML 2.0 IdP metadata, as Entra's "Federation Metadata XML" and any
//! SAML 2.0 IdP publish it.
//!
//! Read from the `IDPSSODescriptor` only (Entra's document also carries
//! WS-Federation `RoleDescriptor`s with the same certificates): the entity
//! id, every signing certificate (`KeyDescriptor use="signing"` or no `use`;
//! during a rollover Entra publishes two or three, and all are trusted), the
//! SSO and SLO endpoints and NameID formats. A document with no signing
//! certificate is an error: there is no "accept unsigned" mode.

use serde::Serialize;
use time::OffsetDateTime;

use crate::identity::ErrorCode;
use crate::trust::certs::{CertError, TrustedCert};
use crate::xml::{self, children, is, Node, XmlError, NS_DS, NS_MD};

/// Why a metadata document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The root is neither an EntityDescriptor nor an EntitiesDescriptor.
    #[error("not SAML metadata: the root element is {0}")]
    NotMetadata(String),
    /// No entity in the document has an IDPSSODescriptor.
    #[error("the metadata describes no SAML identity provider (no IDPSSODescriptor)")]
    NoIdp,
    /// Several IdP entities and none was chosen.
    #[error("the metadata describes {0} identity providers; choose one by entity id")]
    Ambiguous(usize),
    /// The EntityDescriptor has no entityID.
    #[error("the EntityDescriptor has no entityID")]
    NoEntityId,
    /// No signing certificate: fedgate never accepts unsigned responses.
    #[error("the IdP publishes no signing certificate; unsigned responses are never accepted")]
    NoSigningCert,
    /// A published certificate could not be read.
    #[error("a signing certificate could not be read: {0}")]
    Cert(#[from] CertError),
}

impl ErrorCode for MetadataError {
    fn code(&self) -> &'static str {
        match self {
            MetadataError::Xml(XmlError::Doctype) => "metadata.doctype_forbidden",
            MetadataError::Xml(_) => "metadata.xml_malformed",
            MetadataError::NotMetadata(_) => "metadata.not_metadata",
            MetadataError::NoIdp => "metadata.no_idp",
            MetadataError::Ambiguous(_) => "metadata.ambiguous_entity",
            MetadataError::NoEntityId => "metadata.entity_id_missing",
            MetadataError::NoSigningCert => "metadata.no_signing_cert",
            MetadataError::Cert(_) => "metadata.cert_invalid",
        }
    }
}

/// An endpoint: a binding and a location.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
}

/// What fedgate trusts about one SAML identity provider.
#[derive(Debug, Clone, Serialize)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub signing_certs: Vec<TrustedCert>,
    pub sso_endpoints: Vec<Endpoint>,
    pub slo_endpoints: Vec<Endpoint>,
    pub nameid_formats: Vec<String>,
    /// Whether the document carries a signature of its own (not verified here).
    pub document_signed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
}

impl IdpMetadata {
    /// Parse a metadata document holding exactly one IdP entity.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        Self::parse_entity(bytes, None)
    }

    /// Parse a metadata document, choosing the IdP entity by id when the
    /// document (an EntitiesDescriptor) holds several.
    pub fn parse_entity(bytes: &[u8], entity_id: Option<&str>) -> Result<Self, MetadataError> {
        let text = xml::utf8(bytes)?;
        let doc = xml::parse(text)?;
        let root = doc.root_element();
        let mut entities = Vec::new();
        if is(&root, NS_MD, "EntityDescriptor") {
            entities.push(root);
        } else if is(&root, NS_MD, "EntitiesDescriptor") {
            collect_entities(root, &mut entities);
        } else {
            return Err(MetadataError::NotMetadata(
                root.tag_name().name().to_string(),
            ));
        }
        let mut idps: Vec<(Node, Node)> = entities
            .into_iter()
            .filter_map(|e| {
                children(e, NS_MD, "IDPSSODescriptor")
                    .next()
                    .map(|d| (e, d))
            })
            .collect();
        if let Some(want) = entity_id {
            idps.retain(|(e, _)| e.attribute("entityID") == Some(want));
        }
        let (entity, idp) = match idps.as_slice() {
            [] => return Err(MetadataError::NoIdp),
            [one] => *one,
            many => return Err(MetadataError::Ambiguous(many.len())),
        };
        let entity_id = entity
            .attribute("entityID")
            .filter(|s| !s.trim().is_empty())
            .ok_or(MetadataError::NoEntityId)?
            .to_string();

        let mut signing_certs: Vec<TrustedCert> = Vec::new();
        for kd in children(idp, NS_MD, "KeyDescriptor") {
            if !matches!(kd.attribute("use"), None | Some("signing")) {
                continue;
            }
            for b64 in x509_certificates(kd) {
                let cert = TrustedCert::from_base64(&b64)?;
                if !signing_certs
                    .iter()
                    .any(|c| c.thumbprint_sha256 == cert.thumbprint_sha256)
                {
                    signing_certs.push(cert);
                }
            }
        }
        if signing_certs.is_empty() {
            return Err(MetadataError::NoSigningCert);
        }
        let endpoints = |local: &str| -> Vec<Endpoint> {
            children(idp, NS_MD, local)
                .map(|e| Endpoint {
                    binding: e.attribute("Binding").unwrap_or_default().to_string(),
                    location: e.attribute("Location").unwrap_or_default().to_string(),
                })
                .collect()
        };
        let document_signed = children(entity, NS_DS, "Signature").next().is_some();
        let valid_until = entity
            .attribute("validUntil")
            .or_else(|| root.attribute("validUntil"))
            .and_then(crate::timefmt::parse);
        Ok(IdpMetadata {
            entity_id,
            sso_endpoints: endpoints("SingleSignOnService"),
            slo_endpoints: endpoints("SingleLogoutService"),
            nameid_formats: children(idp, NS_MD, "NameIDFormat")
                .map(|n| xml::text_content(n).trim().to_string())
                .collect(),
            document_signed,
            valid_until,
            signing_certs,
        })
    }

    /// Trust built from PEM certificates and an entity id given by hand
    /// (`--metadata cert.pem --idp-entity-id …`), for IdPs without metadata.
    pub fn from_pem(pem: &str, entity_id: &str) -> Result<Self, MetadataError> {
        if entity_id.trim().is_empty() {
            return Err(MetadataError::NoEntityId);
        }
        Ok(IdpMetadata {
            entity_id: entity_id.to_string(),
            signing_certs: TrustedCert::from_pem_bundle(pem)?,
            sso_endpoints: Vec::new(),
            slo_endpoints: Vec::new(),
            nameid_formats: Vec::new(),
            document_signed: false,
            valid_until: None,
        })
    }
}

fn collect_entities<'a, 'i>(node: Node<'a, 'i>, out: &mut Vec<Node<'a, 'i>>) {
    for c in node.children().filter(Node::is_element) {
        if is(&c, NS_MD, "EntityDescriptor") {
            out.push(c);
        } else if is(&c, NS_MD, "EntitiesDescriptor") {
            collect_entities(c, out);
        }
    }
}

fn x509_certificates(key_descriptor: Node) -> Vec<String> {
    children(key_descriptor, NS_DS, "KeyInfo")
        .flat_map(|ki| children(ki, NS_DS, "X509Data"))
        .flat_map(|d| children(d, NS_DS, "X509Certificate"))
        .map(|c| xml::text_content(c).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_B64: &str = include_str!("../../tests/data/test_cert.b64");

    fn idp(key_descriptors: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key_descriptors}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    fn kd(usage: Option<&str>) -> String {
        let use_attr = usage.map(|u| format!(" use=\"{u}\"")).unwrap_or_default();
        format!("<md:KeyDescriptor{use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{CERT_B64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>")
    }

    #[test]
    fn signing_and_unqualified_key_descriptors_are_trusted() {
        let md = IdpMetadata::parse(idp(&kd(Some("signing"))).as_bytes()).unwrap();
        assert_eq!(md.signing_certs.len(), 1);
        assert_eq!(md.sso_endpoints[0].location, "https://idp.example/sso");
        let md = IdpMetadata::parse(idp(&kd(None)).as_bytes()).unwrap();
        assert_eq!(md.signing_certs.len(), 1);
        // The same certificate twice is one trusted certificate.
        let twice = format!("{}{}", kd(Some("signing")), kd(None));
        assert_eq!(
            IdpMetadata::parse(idp(&twice).as_bytes())
                .unwrap()
                .signing_certs
                .len(),
            1
        );
    }

    #[test]
    fn no_signing_certificate_is_an_error() {
        let err = IdpMetadata::parse(idp(&kd(Some("encryption"))).as_bytes()).unwrap_err();
        assert_eq!(err.code(), "metadata.no_signing_cert");
        let err = IdpMetadata::parse(idp("").as_bytes()).unwrap_err();
        assert_eq!(err.code(), "metadata.no_signing_cert");
    }

    #[test]
    fn other_documents_are_refused_by_name() {
        assert_eq!(
            IdpMetadata::parse(b"<a/>").unwrap_err().code(),
            "metadata.not_metadata"
        );
        assert_eq!(
            IdpMetadata::parse(b"<!DOCTYPE x><md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"/>")
                .unwrap_err()
                .code(),
            "metadata.doctype_forbidden"
        );
        let sp = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>"#;
        assert_eq!(
            IdpMetadata::parse(sp.as_bytes()).unwrap_err().code(),
            "metadata.no_idp"
        );
        let bad_cert = idp("<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>");
        assert_eq!(
            IdpMetadata::parse(bad_cert.as_bytes()).unwrap_err().code(),
            "metadata.cert_invalid"
        );
    }
}
