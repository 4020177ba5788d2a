//! Passkeys (WebAuthn), compatible with BetterAuth's `@better-auth/passkey`
//! plugin: the same `passkey` rows, so that a passkey registered through
//! BetterAuth signs in through Warden and the other way round.
//!
//! Verification is `webauthn-rs-core`'s (the audited `webauthn-rs`
//! family), never ours. Its high-level `webauthn-rs` API offers only ES256
//! and RS256 and refuses any other key at registration; BetterAuth offers
//! EdDSA first (-8, -7, -257), so Chromium makes Ed25519 keys and
//! BetterAuth databases hold them. Hence the core API, with the explicit
//! algorithm list [`ALGORITHMS`]; everything else (challenge, origin, RP id
//! hash, user presence and verification, signature, counter) is the
//! crate's check.
//!
//! What BetterAuth stores, and how it maps onto the crate's `Credential`:
//! - `credentialID`: the credential id, base64url without padding;
//! - `publicKey`: the COSE public key (CBOR), standard base64;
//! - `counter`: the signature counter;
//! - `deviceType`: `multiDevice` when the credential is backup eligible
//!   (`singleDevice` otherwise), `backedUp`: its backup state;
//! - `transports`: comma-separated; `aaguid`: the authenticator model.
//!
//! Ceremony state (the crate's `RegistrationState`/`AuthenticationState`,
//! which hold the challenge) is kept server-side in a `verification` row
//! keyed by the hash of a random token; the client holds the token only (in
//! a signed cookie, as BetterAuth). Rows live 5 minutes and are consumed by
//! the first verification attempt, whatever its outcome.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;
use warden_telemetry::metrics::SignInMethod;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationFormat, AuthenticationState, AuthenticatorAttachment, COSEAlgorithm, COSEKey,
    Credential, ParsedAttestation, PublicKeyCredential, RegisterPublicKeyCredential,
    RegisteredExtensions, Registration, RegistrationState, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use crate::error::AuthError;
use crate::model::{RequestMeta, Timestamp};
use crate::service::{Authenticated, SignedIn, Warden};
use crate::store::StoreError;
use crate::token::new_id;

/// The algorithms offered and accepted, in BetterAuth's order.
pub const ALGORITHMS: [COSEAlgorithm; 3] = [
    COSEAlgorithm::EDDSA,
    COSEAlgorithm::ES256,
    COSEAlgorithm::RS256,
];

/// Verification rows' purpose (`passkey:<sha256(token)>`).
const PURPOSE: &str = "passkey";

/// The reason [`AuthError::PasskeyAuthenticationFailed`] gives for a
/// signature that does not verify (BetterAuth answers it with 401, other
/// refusals with 400).
pub const BAD_SIGNATURE: &str = "the signature is invalid";

/// Longest passkey name accepted.
pub const MAX_NAME_CHARS: usize = 256;
/// Largest ceremony response accepted (a registration response with an
/// attestation certificate chain is a few kilobytes).
const MAX_RESPONSE_BYTES: usize = 32 * 1024;

/// Whether the authenticator must verify the user (PIN, biometrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    Required,
    Preferred,
    Discouraged,
}

impl UserVerification {
    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Required => "required",
            UserVerification::Preferred => "preferred",
            UserVerification::Discouraged => "discouraged",
        }
    }

    fn policy(self) -> UserVerificationPolicy {
        match self {
            UserVerification::Required => UserVerificationPolicy::Required,
            UserVerification::Preferred => UserVerificationPolicy::Preferred,
            UserVerification::Discouraged => UserVerificationPolicy::Discouraged_DO_NOT_USE,
        }
    }
}

impl std::str::FromStr for UserVerification {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(UserVerification::Required),
            "preferred" => Ok(UserVerification::Preferred),
            "discouraged" => Ok(UserVerification::Discouraged),
            other => Err(format!(
                "{other:?}: expected \"required\", \"preferred\" or \"discouraged\""
            )),
        }
    }
}

/// The relying party.
#[derive(Clone, Debug)]
pub struct PasskeySettings {
    pub enabled: bool,
    /// The RP id: a registrable domain of every origin (default: the host
    /// of `base_url`).
    pub rp_id: String,
    /// Shown by authenticators (default: the app name).
    pub rp_name: String,
    /// Origins a ceremony may come from (the trusted origins).
    pub origins: Vec<String>,
    /// Default `required` (BetterAuth's is `preferred`).
    pub user_verification: UserVerification,
    /// How long a ceremony's challenge lives (5 minutes, as BetterAuth).
    pub challenge_ttl: Duration,
    /// The authenticator timeout the options carry (60 s, as BetterAuth).
    pub timeout: Duration,
}

impl Default for PasskeySettings {
    fn default() -> Self {
        PasskeySettings {
            enabled: true,
            rp_id: "localhost".into(),
            rp_name: "Warden".into(),
            origins: vec!["http://localhost:4000".into()],
            user_verification: UserVerification::Required,
            challenge_ttl: Duration::from_secs(300),
            timeout: Duration::from_secs(60),
        }
    }
}

impl PasskeySettings {
    /// Checks the settings (at start-up): the origins parse and the RP id
    /// is each one's host or a parent domain of it.
    pub fn check(&self) -> Result<(), String> {
        if self.rp_id.is_empty() {
            return Err("passkey.rp_id is empty".into());
        }
        for o in &self.origins {
            let url = Url::parse(o).map_err(|e| format!("passkey origin {o:?}: {e}"))?;
            let host = url.host_str().unwrap_or("");
            if host != self.rp_id && !host.ends_with(&format!(".{}", self.rp_id)) {
                tracing::warn!(origin = %o, rp_id = %self.rp_id, "trusted origin is not on the passkey rp_id: passkeys cannot be used from it");
            }
        }
        Ok(())
    }
}

/// A `passkey` row, as BetterAuth's plugin defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: String,
    pub name: Option<String>,
    /// The COSE public key, standard base64.
    pub public_key: String,
    pub user_id: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub counter: i64,
    /// `singleDevice` or `multiDevice`.
    pub device_type: String,
    pub backed_up: bool,
    /// Comma-separated transports (`internal,hybrid`), possibly empty.
    pub transports: Option<String>,
    pub created_at: Option<Timestamp>,
    pub aaguid: Option<String>,
}

/// Options for `navigator.credentials.create()` or `.get()` (the JSON
/// `@simplewebauthn/browser` takes) and the token naming the ceremony's
/// server-side state.
#[derive(Debug, Clone)]
pub struct PasskeyCeremony {
    pub token: crate::token::SessionToken,
    pub options: Value,
    pub expires_in: Duration,
}

/// Ceremony state kept in the verification row.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum CeremonyState {
    Registration {
        #[serde(rename = "userId")]
        user_id: String,
        state: RegistrationState,
    },
    Authentication {
        state: AuthenticationState,
    },
}

/// `authenticatorAttachment` of registration options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    Platform,
    CrossPlatform,
}

impl Attachment {
    fn as_str(self) -> &'static str {
        match self {
            Attachment::Platform => "platform",
            Attachment::CrossPlatform => "cross-platform",
        }
    }
}

impl std::str::FromStr for Attachment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "platform" => Ok(Attachment::Platform),
            "cross-platform" => Ok(Attachment::CrossPlatform),
            _ => Err("must be \"platform\" or \"cross-platform\"".into()),
        }
    }
}

/// A stored row as the crate's credential. `None` if the row does not hold
/// a usable key (written by something else, or damaged).
pub fn credential_from_record(
    p: &PasskeyRecord,
    policy: UserVerificationPolicy,
) -> Option<Credential> {
    let cred_id = URL_SAFE_NO_PAD
        .decode(p.credential_id.trim_end_matches('='))
        .ok()?;
    let key_bytes = STANDARD.decode(&p.public_key).ok()?;
    let value: serde_cbor_2::Value = serde_cbor_2::from_slice(&key_bytes).ok()?;
    let cred = COSEKey::try_from(&value).ok()?;
    let transports = p.transports.as_deref().and_then(|t| {
        let list: Vec<_> = t
            .split(',')
            .filter_map(|s| serde_json::from_value(Value::String(s.trim().to_owned())).ok())
            .collect();
        (!list.is_empty()).then_some(list)
    });
    Some(Credential {
        cred_id: cred_id.into(),
        cred,
        counter: u32::try_from(p.counter).unwrap_or(u32::MAX),
        transports,
        // Not in BetterAuth's row: the ceremony's own policy decides.
        user_verified: false,
        backup_eligible: p.device_type == "multiDevice",
        backup_state: p.backed_up,
        registration_policy: policy,
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    })
}

fn descriptors(passkeys: &[PasskeyRecord]) -> Vec<Value> {
    passkeys
        .iter()
        .map(|p| {
            let mut d = json!({ "id": p.credential_id, "type": "public-key" });
            if let Some(t) = p.transports.as_deref().filter(|t| !t.is_empty()) {
                d["transports"] = t.split(',').collect::<Vec<_>>().into();
            }
            d
        })
        .collect()
}

fn uuid_string(b: &[u8]) -> String {
    let h = hex::encode(b);
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The COSE key bytes and AAGUID of a registration response, read with
/// the crate's parsers (the attestation object is CBOR; its `authData`
/// holds the attested credential data).
fn attested_key(reg: &RegisterPublicKeyCredential) -> Result<(Vec<u8>, String), String> {
    let obj: serde_cbor_2::Value =
        serde_cbor_2::from_slice(reg.response.attestation_object.as_ref())
            .map_err(|e| format!("attestationObject is not CBOR: {e}"))?;
    let serde_cbor_2::Value::Map(m) = obj else {
        return Err("attestationObject is not a map".into());
    };
    let Some(serde_cbor_2::Value::Bytes(auth_data)) =
        m.get(&serde_cbor_2::Value::Text("authData".into()))
    else {
        return Err("attestationObject has no authData".into());
    };
    let data = AuthenticatorData::<Registration>::try_from(auth_data.as_slice())
        .map_err(|e| format!("authData: {e}"))?;
    let acd = data
        .acd
        .ok_or_else(|| "authData has no attested credential".to_string())?;
    let key = serde_cbor_2::to_vec(&acd.credential_pk).map_err(|e| e.to_string())?;
    Ok((key, uuid_string(acd.aaguid.as_ref())))
}

/// What went wrong in a ceremony, in words for the client.
fn describe(e: &WebauthnError) -> &'static str {
    use WebauthnError as E;
    match e {
        E::InvalidRPOrigin => "the origin is not allowed",
        E::InvalidRPIDHash => "the credential is for another relying party",
        E::MismatchedChallenge => "the response is for another challenge",
        E::InvalidClientDataType => "the response is for another ceremony",
        E::UserNotPresent => "user presence is required",
        E::UserNotVerified => "user verification is required",
        E::CredentialPossibleCompromise => {
            "the signature counter did not increase (possibly a cloned authenticator)"
        }
        E::CredentialAlteredAlgFromRequest => "the key algorithm is not allowed",
        E::CredentialNotFound => "unknown credential",
        E::AuthenticationFailure => BAD_SIGNATURE,
        E::CredentialBackupEligibilityInconsistent => "the credential's backup eligibility changed",
        E::ParseBase64Failure(_)
        | E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable => "the response is malformed",
        _ => "the response could not be verified",
    }
}

fn parse<T: serde::de::DeserializeOwned>(response: &Value) -> Result<T, AuthError> {
    let len = serde_json::to_vec(response).map(|v| v.len()).unwrap_or(0);
    if len > MAX_RESPONSE_BYTES {
        return Err(AuthError::Invalid {
            field: "response",
            message: format!("is larger than {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    T::deserialize(response).map_err(|e| AuthError::Invalid {
        field: "response",
        message: format!("is not a WebAuthn credential: {e}"),
    })
}

/// Trims a passkey name; `None` for none or blank.
pub fn clean_name(name: Option<&str>) -> Result<Option<String>, AuthError> {
    let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(AuthError::Invalid {
            field: "name",
            message: format!("must be at most {MAX_NAME_CHARS} characters"),
        });
    }
    if n.chars().any(char::is_control) {
        return Err(AuthError::Invalid {
            field: "name",
            message: "must not contain control characters".into(),
        });
    }
    Ok(Some(n.to_owned()))
}

impl Warden {
    fn passkey_settings(&self) -> Result<&PasskeySettings, AuthError> {
        let s = &self.settings.passkey;
        if !s.enabled {
            return Err(AuthError::PasskeysDisabled);
        }
        Ok(s)
    }

    fn webauthn(&self) -> Result<WebauthnCore, AuthError> {
        let s = self.passkey_settings()?;
        let origins = s
            .origins
            .iter()
            .map(|o| Url::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuthError::Internal(format!("passkey origin: {e}")))?;
        Ok(WebauthnCore::new_unsafe_experts_only(
            &s.rp_name, &s.rp_id, origins, s.timeout, None, None,
        ))
    }

    /// Options to register a new passkey for a signed-in user (BetterAuth's
    /// `generate-register-options`). Needs a fresh session, as BetterAuth.
    pub async fn passkey_registration_options(
        &self,
        auth: &Authenticated,
        name: Option<&str>,
        attachment: Option<Attachment>,
    ) -> Result<PasskeyCeremony, AuthError> {
        let s = self.passkey_settings()?.clone();
        if !self.is_fresh(&auth.session) {
            return Err(AuthError::SessionNotFresh);
        }
        let name = clean_name(name)?;
        let webauthn = self.webauthn()?;
        let existing = self.store.list_passkeys(&auth.user.id).await?;
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .map(Into::into)
            .collect();
        // A random user handle, as BetterAuth (never the user id).
        let handle = crate::token::random_string(32).to_lowercase();
        let user_name = name.clone().unwrap_or_else(|| auth.user.email.clone());
        let builder = webauthn
            .new_challenge_register_builder(handle.as_bytes(), &user_name, &auth.user.email)
            .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?
            .credential_algorithms(ALGORITHMS.to_vec())
            .user_verification_policy(s.user_verification.policy())
            .exclude_credentials(Some(exclude))
            .authenticator_attachment(attachment.map(|a| match a {
                Attachment::Platform => AuthenticatorAttachment::Platform,
                Attachment::CrossPlatform => AuthenticatorAttachment::CrossPlatform,
            }));
        let (ccr, state) = webauthn
            .generate_challenge_register(builder)
            .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
        let pk = ccr.public_key;
        let mut selection = json!({
            "residentKey": "preferred",
            "userVerification": s.user_verification.as_str(),
            "requireResidentKey": false,
        });
        if let Some(a) = attachment {
            selection["authenticatorAttachment"] = a.as_str().into();
        }
        // BetterAuth's (SimpleWebAuthn's) shape, field for field.
        let options = json!({
            "challenge": URL_SAFE_NO_PAD.encode(pk.challenge.as_ref()),
            "rp": { "name": pk.rp.name, "id": pk.rp.id },
            "user": {
                "id": URL_SAFE_NO_PAD.encode(handle.as_bytes()),
                "name": user_name,
                "displayName": auth.user.email,
            },
            "pubKeyCredParams": pk.pub_key_cred_params.iter()
                .map(|p| json!({ "alg": p.alg, "type": p.type_ }))
                .collect::<Vec<_>>(),
            "timeout": s.timeout.as_millis() as u64,
            "attestation": "none",
            "excludeCredentials": descriptors(&existing),
            "authenticatorSelection": selection,
            "extensions": { "credProps": true },
            "hints": [],
        });
        let value = serde_json::to_string(&CeremonyState::Registration {
            user_id: auth.user.id.clone(),
            state,
        })
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        let token = self.issue_token(PURPOSE, &value, s.challenge_ttl).await?;
        Ok(PasskeyCeremony {
            token,
            options,
            expires_in: s.challenge_ttl,
        })
    }

    /// Options to sign in with a passkey (BetterAuth's
    /// `generate-authenticate-options`). Without a session they name no
    /// credential: the authenticator offers its discoverable ones (and the
    /// same options serve conditional UI, autofill). With one, the user's
    /// passkeys are listed, as BetterAuth does.
    pub async fn passkey_authentication_options(
        &self,
        auth: Option<&Authenticated>,
    ) -> Result<PasskeyCeremony, AuthError> {
        let s = self.passkey_settings()?.clone();
        let webauthn = self.webauthn()?;
        let passkeys = match auth {
            Some(a) => self.store.list_passkeys(&a.user.id).await?,
            None => Vec::new(),
        };
        let builder = webauthn
            .new_challenge_authenticate_builder(Vec::new(), Some(s.user_verification.policy()))
            .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
        let (rcr, state) = webauthn
            .generate_challenge_authenticate(builder)
            .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
        let pk = rcr.public_key;
        let mut options = json!({
            "rpId": pk.rp_id,
            "challenge": URL_SAFE_NO_PAD.encode(pk.challenge.as_ref()),
            "timeout": s.timeout.as_millis() as u64,
            "userVerification": s.user_verification.as_str(),
        });
        if !passkeys.is_empty() {
            options["allowCredentials"] = descriptors(&passkeys).into();
        }
        let value = serde_json::to_string(&CeremonyState::Authentication { state })
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let token = self.issue_token(PURPOSE, &value, s.challenge_ttl).await?;
        Ok(PasskeyCeremony {
            token,
            options,
            expires_in: s.challenge_ttl,
        })
    }

    /// The ceremony state `token` names, consumed (single use).
    async fn take_ceremony(&self, token: Option<&str>) -> Result<CeremonyState, AuthError> {
        let token = token.ok_or(AuthError::PasskeyChallengeNotFound)?;
        let value = self
            .take_token(PURPOSE, token)
            .await?
            .ok_or(AuthError::PasskeyChallengeNotFound)?;
        serde_json::from_str(&value).map_err(|_| AuthError::PasskeyChallengeNotFound)
    }

    /// Verifies a registration response (BetterAuth's
    /// `verify-registration`) and stores the passkey. With `create_session`
    /// (BetterAuth's option) a new session is started too.
    pub async fn passkey_verify_registration(
        &self,
        auth: &Authenticated,
        token: Option<&str>,
        response: &Value,
        name: Option<&str>,
        create_session: bool,
        meta: RequestMeta,
    ) -> Result<(PasskeyRecord, Option<SignedIn>), AuthError> {
        self.passkey_settings()?;
        if !self.is_fresh(&auth.session) {
            return Err(AuthError::SessionNotFresh);
        }
        let name = clean_name(name)?;
        let CeremonyState::Registration { user_id, state } = self.take_ceremony(token).await?
        else {
            return Err(AuthError::PasskeyChallengeNotFound);
        };
        if user_id != auth.user.id {
            return Err(AuthError::PasskeyNotOwned);
        }
        let reg: RegisterPublicKeyCredential = parse(response)?;
        let webauthn = self.webauthn()?;
        let cred = webauthn
            .register_credential(&reg, &state, None)
            .map_err(|e| {
                tracing::info!(user_id = %auth.user.id, error = %e, "passkey registration refused");
                AuthError::PasskeyRegistrationFailed(describe(&e))
            })?;
        let (key, aaguid) = attested_key(&reg).map_err(|e| {
            tracing::info!(user_id = %auth.user.id, error = %e, "passkey registration: unreadable key");
            AuthError::PasskeyRegistrationFailed("the response is malformed")
        })?;
        let credential_id = URL_SAFE_NO_PAD.encode(cred.cred_id.as_ref());
        if self
            .store
            .find_passkey_by_credential_id(&credential_id)
            .await?
            .is_some()
        {
            return Err(AuthError::PasskeyRegistrationFailed(
                "this passkey is registered already",
            ));
        }
        let transports = response
            .pointer("/response/transports")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| t.len() <= 32 && !t.contains(','))
                    .take(8)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let record = PasskeyRecord {
            id: new_id(),
            name,
            public_key: STANDARD.encode(key),
            user_id: auth.user.id.clone(),
            credential_id,
            counter: i64::from(cred.counter),
            device_type: if cred.backup_eligible {
                "multiDevice"
            } else {
                "singleDevice"
            }
            .into(),
            backed_up: cred.backup_state,
            transports: Some(transports),
            created_at: Some(self.now()),
            aaguid: Some(aaguid),
        };
        self.store.insert_passkey(&record).await?;
        tracing::info!(user_id = %auth.user.id, passkey_id = %record.id, alg = ?cred.cred.type_, "passkey registered");
        let signed_in = if create_session {
            let user = self
                .store
                .find_user(&auth.user.id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            Some(self.start_session(user, meta, true).await?)
        } else {
            None
        };
        Ok((record, signed_in))
    }

    /// Signs in with a passkey (BetterAuth's `verify-authentication`): a
    /// complete sign-in, with no second factor after it (the passkey is
    /// possession and, with user verification, inherence), as BetterAuth.
    /// Banned users are refused by `start_session`.
    pub async fn passkey_sign_in(
        &self,
        token: Option<&str>,
        response: &Value,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        let result = self.passkey_sign_in_inner(token, response, meta).await;
        self.count_sign_in(SignInMethod::Passkey, &result, |_| false);
        result
    }

    async fn passkey_sign_in_inner(
        &self,
        token: Option<&str>,
        response: &Value,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        let s = self.passkey_settings()?.clone();
        let CeremonyState::Authentication { mut state } = self.take_ceremony(token).await? else {
            return Err(AuthError::PasskeyChallengeNotFound);
        };
        let rsp: PublicKeyCredential = parse(response)?;
        let credential_id = URL_SAFE_NO_PAD.encode(rsp.raw_id.as_ref());
        let passkey = self
            .store
            .find_passkey_by_credential_id(&credential_id)
            .await?
            .ok_or(AuthError::PasskeyUnknownCredential)?;
        let cred =
            credential_from_record(&passkey, s.user_verification.policy()).ok_or_else(|| {
                tracing::warn!(passkey_id = %passkey.id, "stored passkey has no usable public key");
                AuthError::PasskeyAuthenticationFailed("the stored passkey is unusable")
            })?;
        state.set_allowed_credentials(vec![cred]);
        let webauthn = self.webauthn()?;
        let result = webauthn.authenticate_credential(&rsp, &state).map_err(|e| {
            if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                tracing::warn!(
                    user_id = %passkey.user_id,
                    passkey_id = %passkey.id,
                    stored_counter = passkey.counter,
                    "passkey refused: signature counter did not increase; possibly a cloned authenticator"
                );
            } else {
                tracing::info!(user_id = %passkey.user_id, passkey_id = %passkey.id, error = %e, "passkey sign-in refused");
            }
            AuthError::PasskeyAuthenticationFailed(describe(&e))
        })?;
        let new_counter = i64::from(result.counter());
        if new_counter != passkey.counter
            && !self
                .store
                .update_passkey_counter(&passkey.id, passkey.counter, new_counter)
                .await?
        {
            // Another sign-in with this passkey moved the counter meanwhile:
            // the same signature counter twice.
            tracing::warn!(user_id = %passkey.user_id, passkey_id = %passkey.id, "passkey refused: counter changed concurrently; possibly a cloned authenticator");
            return Err(AuthError::PasskeyAuthenticationFailed(
                "the signature counter did not increase (possibly a cloned authenticator)",
            ));
        }
        let user = self
            .store
            .find_user(&passkey.user_id)
            .await?
            .ok_or(AuthError::PasskeyUnknownCredential)?;
        tracing::info!(user_id = %user.id, passkey_id = %passkey.id, "passkey accepted");
        self.start_session(user, meta, true).await
    }

    /// The signed-in user's passkeys, oldest first.
    pub async fn list_passkeys(
        &self,
        auth: &Authenticated,
    ) -> Result<Vec<PasskeyRecord>, AuthError> {
        self.passkey_settings()?;
        Ok(self.store.list_passkeys(&auth.user.id).await?)
    }

    /// A passkey of the signed-in user: `PasskeyNotFound` if none has this
    /// id, `PasskeyNotOwned` if another user's has (as BetterAuth).
    async fn own_passkey(
        &self,
        auth: &Authenticated,
        id: &str,
    ) -> Result<PasskeyRecord, AuthError> {
        self.passkey_settings()?;
        if id.is_empty() || id.len() > 256 {
            return Err(AuthError::Invalid {
                field: "id",
                message: if id.is_empty() {
                    "is required".into()
                } else {
                    "is too long".into()
                },
            });
        }
        let p = self
            .store
            .find_passkey(id)
            .await?
            .ok_or(AuthError::PasskeyNotFound)?;
        if p.user_id != auth.user.id {
            return Err(AuthError::PasskeyNotOwned);
        }
        Ok(p)
    }

    /// Renames a passkey of the signed-in user.
    pub async fn rename_passkey(
        &self,
        auth: &Authenticated,
        id: &str,
        name: &str,
    ) -> Result<PasskeyRecord, AuthError> {
        let name = clean_name(Some(name))?.ok_or(AuthError::Invalid {
            field: "name",
            message: "must not be empty".into(),
        })?;
        let p = self.own_passkey(auth, id).await?;
        match self
            .store
            .rename_passkey(&auth.user.id, &p.id, &name)
            .await?
        {
            Some(p) => {
                tracing::info!(user_id = %auth.user.id, passkey_id = %p.id, "passkey renamed");
                Ok(p)
            }
            None => Err(AuthError::PasskeyNotFound),
        }
    }

    /// Deletes a passkey of the signed-in user.
    pub async fn delete_passkey(&self, auth: &Authenticated, id: &str) -> Result<(), AuthError> {
        let p = self.own_passkey(auth, id).await?;
        match self.store.delete_passkey(&auth.user.id, &p.id).await {
            Ok(true) => {
                tracing::info!(user_id = %auth.user.id, passkey_id = %p.id, "passkey deleted");
                Ok(())
            }
            Ok(false) => Err(AuthError::PasskeyNotFound),
            Err(StoreError::Conflict) => Err(AuthError::PasskeyNotFound),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(public_key: String) -> PasskeyRecord {
        PasskeyRecord {
            id: "p1".into(),
            name: None,
            public_key,
            user_id: "u1".into(),
            credential_id: URL_SAFE_NO_PAD.encode([1u8, 2, 3, 4]),
            counter: 7,
            device_type: "multiDevice".into(),
            backed_up: true,
            transports: Some("internal,hybrid".into()),
            created_at: None,
            aaguid: None,
        }
    }

    /// An Ed25519 COSE key as BetterAuth stores it (RFC 8152 example
    /// shape: kty OKP, alg EdDSA, crv Ed25519, x).
    fn ed25519_cose() -> Vec<u8> {
        use serde_cbor_2::Value as V;
        let mut m = std::collections::BTreeMap::new();
        m.insert(V::Integer(1), V::Integer(1));
        m.insert(V::Integer(3), V::Integer(-8));
        m.insert(V::Integer(-1), V::Integer(6));
        // The Ed25519 base point: a valid public key.
        let x = hex::decode("5866666666666666666666666666666666666666666666666666666666666666")
            .unwrap();
        m.insert(V::Integer(-2), V::Bytes(x));
        serde_cbor_2::to_vec(&V::Map(m)).unwrap()
    }

    #[test]
    fn a_betterauth_row_maps_to_the_crates_credential() {
        let r = record(STANDARD.encode(ed25519_cose()));
        let c = credential_from_record(&r, UserVerificationPolicy::Required).unwrap();
        assert_eq!(c.cred_id.as_ref(), &[1u8, 2, 3, 4]);
        assert_eq!(c.cred.type_, COSEAlgorithm::EDDSA);
        assert_eq!(c.counter, 7);
        assert!(c.backup_eligible && c.backup_state);
        assert_eq!(c.transports.map(|t| t.len()), Some(2));
    }

    #[test]
    fn unusable_rows_map_to_none() {
        assert!(credential_from_record(
            &record("not base64!".into()),
            UserVerificationPolicy::Required
        )
        .is_none());
        assert!(credential_from_record(
            &record(STANDARD.encode(b"\x01\x02")),
            UserVerificationPolicy::Required
        )
        .is_none());
        let mut r = record(STANDARD.encode(ed25519_cose()));
        r.credential_id = "%%%".into();
        assert!(credential_from_record(&r, UserVerificationPolicy::Required).is_none());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            clean_name(Some("  Laptop ")).unwrap().as_deref(),
            Some("Laptop")
        );
        assert_eq!(clean_name(Some("   ")).unwrap(), None);
        assert!(clean_name(Some(&"x".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(clean_name(Some("a\u{0}b")).is_err());
    }

    #[test]
    fn aaguids_are_uuids() {
        assert_eq!(
            uuid_string(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }

    #[test]
    fn user_verification_parses_its_three_values() {
        for v in ["required", "preferred", "discouraged"] {
            assert_eq!(v.parse::<UserVerification>().unwrap().as_str(), v);
        }
        assert!("always".parse::<UserVerification>().is_err());
    }
}
