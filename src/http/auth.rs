//! API keys: `Authorization: Bearer <key>`, matched by SHA-256 against the configured keys.

/// Scopes a configured key may carry.
pub const KNOWN_SCOPES: &[&str] = &["onboarding:write", "decisions:read", "pii:read"];
