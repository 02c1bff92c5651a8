//! Bearer-token authentication: who is calling and with which role. Tokens are kept only as
//! SHA-256 digests and compared in constant time; a token may also come as the
//! `access_token` query parameter, for clients that cannot set headers (EventSource).

use axum::extract::{FromRequestParts, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::config::{Role, TokenConfig};
use super::error::ApiError;
use super::state::AppState;

pub(super) struct Tokens(Vec<([u8; 32], Role, String)>);

impl Tokens {
    pub fn new(config: &[TokenConfig]) -> Tokens {
        Tokens(
            config
                .iter()
                .filter(|t| !t.token.expose().is_empty())
                .map(|t| (digest(t.token.expose()), t.role, t.name.clone()))
                .collect(),
        )
    }

    fn check(&self, presented: &str) -> Option<Caller> {
        let d = digest(presented);
        let mut found = None;
        // Look at every entry so the time taken does not depend on which one matches.
        for (known, role, name) in &self.0 {
            let diff = known.iter().zip(&d).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(Caller {
                    role: *role,
                    name: name.clone(),
                });
            }
        }
        found
    }
}

fn digest(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(Sha256::digest(s.as_bytes()).as_slice());
    out
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    pub name: String,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The token a request carries, from the header first, then the query string.
pub(super) fn presented(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    Query::<TokenQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.access_token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = presented(parts).ok_or(ApiError::Unauthorized)?;
        state.tokens.check(&token).ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_roles_order() {
        let t = Tokens::new(&[
            TokenConfig {
                name: "sup".into(),
                token: crate::registrar::Secret::new("s3cret"),
                role: Role::Supervisor,
            },
            TokenConfig {
                name: "empty".into(),
                token: crate::registrar::Secret::new(""),
                role: Role::Admin,
            },
        ]);
        assert_eq!(t.check("s3cret").map(|c| c.role), Some(Role::Supervisor));
        assert!(t.check("s3cre").is_none());
        assert!(
            t.check("").is_none(),
            "an empty token in config opens nothing"
        );
        let sup = t.check("s3cret").unwrap();
        assert!(sup.require(Role::Supervisor).is_ok());
        assert!(matches!(sup.require(Role::Admin), Err(ApiError::Forbidden)));
    }
}
