//! fedgate: an identity bridge between Microsoft Entra ID and backup consoles.
//!
//! The flow goes one way:
//!
//! ```text
//!  Entra ID ──SAML POST / OIDC code / Bearer──▶ inbound ──▶ Identity ──▶ policy ──▶ Grant ──▶ outbound ──▶ console
//!                                                (saml, bearer)  (neutral)
//!             trust (metadata, certs, JWKS) feeds inbound
//! ```
//!
//! - [`xml`]: the one XML parser (DTDs refused) and exclusive C14N, and the strict
//!   XML-DSig profile on top of it.
//! - [`trust`]: IdP federation metadata, certificates, JWKS.
//! - [`inbound`]: verifiers for SAML responses and bearer tokens, each returning an
//!   [`identity::Identity`] or an error with a stable code.
//!
//! Protocol code does no I/O and never reads the wall clock: the current time
//! is a parameter, so every time-window check can be tested with a fixed instant.

#![forbid(unsafe_code)]

pub mod audit;
pub mod binding;
pub mod check;
pub mod cli;
pub mod config;
pub mod consoles;
pub mod cpu;
pub mod demo;
pub mod domains;
pub mod drill;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod lint;
pub mod metrics;
pub mod mock;
pub mod net;
pub mod outbound;
pub mod policy;
pub mod review;
pub mod slo;
pub mod store;
pub mod timefmt;
pub mod trust;
pub mod util;
pub mod xml;
