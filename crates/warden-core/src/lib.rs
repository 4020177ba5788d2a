//! Warden's domain: users, sessions, passwords and tokens.
//!
//! This crate knows nothing about HTTP or SQL. It defines the [`Store`] trait
//! that storage backends implement, and [`Warden`], the service that every
//! front end (the tutorial's `/auth/*` API, BetterAuth's `/api/auth/*` API,
//! library users' own handlers) calls.

pub mod admin;
pub mod clock;
mod error;
pub mod invalidate;
pub mod limit;
pub mod mail;
mod model;
pub mod passkey;
pub mod password;
pub mod passwordless;
mod service;
pub mod social;
mod store;
pub mod token;
pub mod two_factor;
mod two_factor_flow;
pub mod validate;

pub use admin::{
    AccessControl, Actor, AdminAction, AdminRefusal, AdminSettings, AdminUserUpdate, AuditEntry,
    Condition, FieldKind, FieldValue, NewUserByAdmin, Operator, UserField, UserPage, UserQuery,
};
pub use clock::{Clock, MockClock, SystemClock};
pub use error::{AuthError, PasswordRejection};
pub use invalidate::{Invalidation, InvalidationBus};
pub use limit::{Counters, Hit, MemoryCounters};
pub use mail::{Email, MailError, Mailer, Outbox, OutboxEntry, Template, Templates};
pub use model::{
    now, Credential, LinkedAccount, NewAccount, RequestMeta, Session, Timestamp, TwoFactorRecord,
    User, UserUpdate,
};
pub use passkey::{Attachment, PasskeyCeremony, PasskeyRecord, PasskeySettings, UserVerification};
pub use password::{Argon2Settings, PasswordHasher, PasswordPolicy};
pub use passwordless::{EmailOtpSettings, MagicLinkSettings, OtpPurpose, PasswordlessSignIn};
pub use service::{
    Authenticated, EmailVerificationSettings, LockoutSettings, PasswordChange,
    PasswordResetSettings, Registered, SessionSettings, SignUp, SignedIn, Verified, Warden,
    WardenSettings,
};
pub use social::{ProviderTokens, SocialIdentity, SocialPolicy, SocialSignIn};
pub use store::{SessionFilter, Store, StoreError};
pub use token::{SessionToken, TokenHash};
pub use two_factor_flow::{
    SecondFactor, SignInOutcome, TwoFactorChallenge, TwoFactorSettings, TwoFactorSetup,
};
