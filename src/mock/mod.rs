//! Mock peers that speak the real protocols: a mock Entra ID tenant (and,
//! later, mock consoles). For benchmarks, tests, the demo and drills.

pub mod console;
pub mod entra;
pub mod entra_oidc;
pub mod graph;
pub mod oidc_console;
pub mod saml_console;
