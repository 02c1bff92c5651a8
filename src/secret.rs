//! A password or token from the config file: usable for digest computation and checks,
//! never printed.

use std::fmt;

use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for hashing. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Written as stars, like `Debug`: a config written back out (the reference check) never
/// carries a password.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let s = Secret::new("Circle of Life");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "Circle of Life");
    }
}
