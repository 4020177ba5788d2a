//! Input rules shared by every front end.

use crate::error::AuthError;

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_NAME_LEN: usize = 256;
pub const MAX_IMAGE_LEN: usize = 2048;

/// Trims and lower-cases an email and checks its shape.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let bad = |msg: &str| Err(AuthError::invalid("email", msg));
    if email.is_empty() {
        return bad("must not be empty");
    }
    // Lengths are counted as sent, before trimming, as the API's schema
    // (`maxLength`) counts them.
    if raw.chars().count() > MAX_EMAIL_LEN {
        return bad("must be at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("is not a valid email address");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return bad("is not a valid email address");
    };
    let domain_ok = !domain.is_empty()
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
        });
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
        return bad("is not a valid email address");
    }
    Ok(email)
}

/// Trims a display name and checks its length.
pub fn name(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AuthError::invalid("name", "must not be empty"));
    }
    if raw.chars().count() > MAX_NAME_LEN {
        return Err(AuthError::invalid(
            "name",
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// An image URL: http(s) or a data: URI, bounded in length.
pub fn image(raw: &str) -> Result<String, AuthError> {
    let image = raw.trim();
    if raw.chars().count() > MAX_IMAGE_LEN {
        return Err(AuthError::invalid(
            "image",
            format!("must be at most {MAX_IMAGE_LEN} characters"),
        ));
    }
    let lower = image.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(AuthError::invalid("image", "must be an http(s) URL"));
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::invalid("image", "must be a valid URL"));
    }
    Ok(image.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  John@Example.COM ").unwrap(), "john@example.com");
        for bad in [
            "",
            "john",
            "john@",
            "@example.com",
            "john@example",
            "jo hn@example.com",
            "john@exa mple.com",
            "john@.com",
            "john@example..com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name(" Jane ").unwrap(), "Jane");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(257)).is_err());
        // Counted as sent: 256 characters and a space are too many.
        assert!(name(&format!(" {}", "x".repeat(256))).is_err());
        assert!(email(&format!(" {}@example.com", "x".repeat(60))).is_ok());
        assert!(name("a\u{0}b").is_err());
    }
}
