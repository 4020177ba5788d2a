//! ID token validation (OpenID Connect Core 1.0, 3.1.3.7): JWS compact
//! parsing, the algorithm allowlist, key selection from the JWKS, signature
//! verification and the claim checks. Fetching and caching the JWKS is the
//! provider's job (`provider.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::IdTokenError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// ID tokens longer than this are refused unparsed.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The signature algorithms accepted, by their JOSE names.
pub const ALLOWED_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"];

/// The validated claims of an ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `sub`: the provider's stable account id.
    pub sub: String,
    /// `iss`, as it appears in the token.
    pub issuer: String,
    /// `aud`, as a list.
    pub audience: Vec<String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: i64,
    /// `iat`, in seconds since the epoch.
    pub issued_at: i64,
    /// `nonce`, if present.
    pub nonce: Option<String>,
    pub email: Option<String>,
    /// `email_verified` as a boolean (`true` or the string `"true"`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// A JWS in compact form, split and decoded, not yet verified.
pub(crate) struct Parsed<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the signed bytes.
    pub message: &'a str,
    /// The signature, base64url as in the token.
    pub signature: &'a str,
    pub claims: Map<String, Value>,
}

fn decode_json_object(part: &str) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdTokenError::Malformed),
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return None,
    })
}

/// Splits and decodes a compact JWS and checks its header: three parts,
/// `alg` on the allowlist, no `crit` extension.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, IdTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(IdTokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Includes JWE (five parts): ID tokens must be signed, not encrypted.
        return Err(IdTokenError::Malformed);
    };
    let header_map = decode_json_object(header)?;
    let alg = match header_map.get("alg") {
        Some(Value::String(name)) => algorithm(name).ok_or(IdTokenError::UnsupportedAlg)?,
        _ => return Err(IdTokenError::Malformed),
    };
    if header_map.contains_key("crit") {
        // No critical extension is understood here (RFC 7515 4.1.11).
        return Err(IdTokenError::Malformed);
    }
    let kid = match header_map.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(IdTokenError::Malformed),
    };
    if signature.is_empty() {
        return Err(IdTokenError::BadSignature);
    }
    let claims = decode_json_object(payload)?;
    Ok(Parsed {
        alg,
        kid,
        message: &token[..header.len() + 1 + payload.len()],
        signature,
        claims,
    })
}

/// Whether `key` may verify a signature made with `alg`: a signing key
/// (`use` absent or `sig`), whose `alg`, if stated, is `alg`, and whose type
/// (and curve) fits `alg`.
fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    if matches!(&key.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(key_alg) = &key.common.key_algorithm {
        if key_alg.to_string() != format!("{alg:?}") {
            return false;
        }
    }
    match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        _ => false,
    }
}

/// The keys of a JWKS that may have signed a token.
pub(crate) enum Selection<'k> {
    /// Candidates, to try in order.
    Keys(Vec<&'k Jwk>),
    /// The token names a `kid` that the set does not have.
    UnknownKid,
    /// No key of the set fits the token's algorithm (a `kid` that names a
    /// key of another type, or no `kid` and no fitting key).
    NoFit,
}

pub(crate) fn select<'k>(keys: &'k [Jwk], kid: Option<&str>, alg: Algorithm) -> Selection<'k> {
    match kid {
        Some(kid) => {
            let named: Vec<&Jwk> = keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return Selection::UnknownKid;
            }
            let fitting: Vec<&Jwk> = named.into_iter().filter(|k| key_fits(k, alg)).collect();
            if fitting.is_empty() {
                Selection::NoFit
            } else {
                Selection::Keys(fitting)
            }
        }
        None => {
            let fitting: Vec<&Jwk> = keys.iter().filter(|k| key_fits(k, alg)).collect();
            if fitting.is_empty() {
                Selection::NoFit
            } else {
                Selection::Keys(fitting)
            }
        }
    }
}

/// Verifies the signature with the first candidate that accepts it.
pub(crate) fn verify_signature(
    parsed: &Parsed<'_>,
    candidates: &[&Jwk],
) -> Result<(), IdTokenError> {
    for key in candidates {
        let Ok(decoding_key) = DecodingKey::from_jwk(key) else {
            continue;
        };
        if let Ok(true) = jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.message.as_bytes(),
            &decoding_key,
            parsed.alg,
        ) {
            return Ok(());
        }
    }
    Err(IdTokenError::BadSignature)
}

/// What the claims must satisfy.
pub(crate) struct Expected<'a> {
    /// Accepted `iss` values (exact string comparison).
    pub issuers: &'a [&'a str],
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .ok_or(IdTokenError::Malformed)?;
            Ok(Some(secs))
        }
        Some(_) => Err(IdTokenError::Malformed),
    }
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `email_verified` as a boolean: `true`, or the string `"true"` (some
/// providers send strings); anything else is `false`.
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The claim checks, in this order: `iss`, `aud`/`azp`, `exp`, `iat`/`nbf`,
/// `nonce`, `sub`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if expected.issuers.contains(&iss.as_str()) => iss.clone(),
        _ => return Err(IdTokenError::WrongIssuer),
    };

    let audience: Vec<String> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(IdTokenError::Malformed)?,
        _ => return Err(IdTokenError::WrongAudience),
    };
    if !audience.iter().any(|a| a == expected.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        None if audience.len() == 1 => {}
        _ => return Err(IdTokenError::WrongAudience),
    }

    let expires_at = numeric_date(claims, "exp")?.ok_or(IdTokenError::Malformed)?;
    if expected.now >= expires_at.saturating_add(LEEWAY_SECS) {
        return Err(IdTokenError::Expired);
    }
    let issued_at = numeric_date(claims, "iat")?.ok_or(IdTokenError::Malformed)?;
    if issued_at > expected.now.saturating_add(LEEWAY_SECS) {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > expected.now.saturating_add(LEEWAY_SECS) {
            return Err(IdTokenError::NotYetValid);
        }
    }

    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(IdTokenError::NonceMismatch),
    };
    if let Some(want) = expected.nonce {
        if nonce.as_deref() != Some(want) {
            return Err(IdTokenError::NonceMismatch);
        }
    }

    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 255 => sub.clone(),
        _ => return Err(IdTokenError::Malformed),
    };

    Ok(IdTokenClaims {
        sub,
        issuer,
        audience,
        expires_at,
        issued_at,
        nonce,
        email: optional_string(claims, "email"),
        email_verified: truthy(claims.get("email_verified")),
        name: optional_string(claims, "name"),
        picture: optional_string(claims, "picture"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn token(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&claims))
    }

    const NOW: i64 = 1_800_000_000;

    fn good() -> Map<String, Value> {
        json!({
            "iss": "https://issuer.example",
            "aud": "client",
            "sub": "42",
            "exp": NOW + 300,
            "iat": NOW,
            "nonce": "n-1",
            "email": "a@example.com",
            "email_verified": "true",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn expected(nonce: Option<&str>) -> Expected<'_> {
        Expected {
            issuers: &["https://issuer.example"],
            client_id: "client",
            nonce,
            now: NOW,
        }
    }

    fn with(key: &str, value: Value) -> Map<String, Value> {
        let mut claims = good();
        if value.is_null() {
            claims.remove(key);
        } else {
            claims.insert(key.into(), value);
        }
        claims
    }

    #[test]
    fn parse_checks_the_header() {
        let claims = json!({"sub": "x"});
        assert_eq!(
            parse(&token(json!({"alg": "none"}), claims.clone())).err(),
            Some(IdTokenError::UnsupportedAlg)
        );
        for alg in ["HS256", "HS512", "EdDSA", "RS1", ""] {
            assert_eq!(
                parse(&token(json!({ "alg": alg }), claims.clone())).err(),
                Some(IdTokenError::UnsupportedAlg),
                "{alg}"
            );
        }
        assert_eq!(
            parse(&token(json!({"typ": "JWT"}), claims.clone())).err(),
            Some(IdTokenError::Malformed)
        );
        assert_eq!(
            parse(&token(
                json!({"alg": "RS256", "crit": ["exp"]}),
                claims.clone()
            ))
            .err(),
            Some(IdTokenError::Malformed)
        );
        assert_eq!(parse("a.b").err(), Some(IdTokenError::Malformed));
        assert_eq!(parse("a.b.c.d.e").err(), Some(IdTokenError::Malformed));
        assert_eq!(parse("!!.b.c").err(), Some(IdTokenError::Malformed));
        let unsigned = format!("{}.{}.", b64(&json!({"alg": "RS256"})), b64(&claims));
        assert_eq!(parse(&unsigned).err(), Some(IdTokenError::BadSignature));

        let t = token(json!({"alg": "ES256", "kid": "k1"}), claims);
        let parsed = parse(&t).unwrap();
        assert_eq!(parsed.alg, Algorithm::ES256);
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(parsed.message.split('.').count(), 2);
    }

    #[test]
    fn claims_accepted() {
        let c = check_claims(&good(), &expected(Some("n-1"))).unwrap();
        assert_eq!(c.sub, "42");
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert!(c.email_verified, "the string \"true\" counts");
        // No nonce expected: not checked.
        check_claims(&good(), &expected(None)).unwrap();
        // Within the leeway.
        check_claims(&with("exp", json!(NOW - 30)), &expected(None)).unwrap();
        check_claims(&with("iat", json!(NOW + 30)), &expected(None)).unwrap();
        // Multiple audiences with azp = client id.
        let mut claims = with("aud", json!(["other", "client"]));
        claims.insert("azp".into(), json!("client"));
        check_claims(&claims, &expected(None)).unwrap();
    }

    #[test]
    fn claims_refused() {
        let e = |claims: Map<String, Value>| check_claims(&claims, &expected(Some("n-1"))).err();
        use IdTokenError::*;
        assert_eq!(
            e(with("iss", json!("https://evil.example"))),
            Some(WrongIssuer)
        );
        assert_eq!(
            e(with("iss", json!("https://issuer.example/"))),
            Some(WrongIssuer)
        );
        assert_eq!(e(with("iss", Value::Null)), Some(WrongIssuer));
        assert_eq!(e(with("aud", json!("other"))), Some(WrongAudience));
        assert_eq!(e(with("aud", Value::Null)), Some(WrongAudience));
        assert_eq!(
            e(with("aud", json!(["client", "other"]))),
            Some(WrongAudience),
            "no azp"
        );
        assert_eq!(e(with("azp", json!("other"))), Some(WrongAudience));
        assert_eq!(e(with("exp", json!(NOW - 61))), Some(Expired));
        assert_eq!(
            e(with("exp", json!("9999999999"))),
            Some(Malformed),
            "string exp"
        );
        assert_eq!(e(with("exp", Value::Null)), Some(Malformed));
        assert_eq!(e(with("iat", Value::Null)), Some(Malformed));
        assert_eq!(e(with("iat", json!(NOW + 3600))), Some(NotYetValid));
        assert_eq!(e(with("nbf", json!(NOW + 3600))), Some(NotYetValid));
        assert_eq!(e(with("nbf", json!("0"))), Some(Malformed));
        assert_eq!(e(with("nonce", json!("other"))), Some(NonceMismatch));
        assert_eq!(e(with("nonce", Value::Null)), Some(NonceMismatch));
        assert_eq!(e(with("sub", json!(""))), Some(Malformed));
        assert_eq!(e(with("sub", json!(42))), Some(Malformed));
    }

    #[test]
    fn email_verified_forms() {
        assert!(truthy(Some(&json!(true))));
        assert!(truthy(Some(&json!("true"))));
        assert!(!truthy(Some(&json!("false"))));
        assert!(!truthy(Some(&json!(1))));
        assert!(!truthy(None));
    }
}
