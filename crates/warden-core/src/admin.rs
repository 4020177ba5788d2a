//! Administration: roles and permissions (BetterAuth's admin plugin access
//! control), bans, impersonation, user management, and the audit trail.
//!
//! Every operation takes an [`Actor`]: a signed-in user, whose permissions
//! are checked here (so that both HTTP front ends and library users get the
//! same rules), or the operator's command line, which is trusted. Every
//! operation that changes something writes an audit row, and every change
//! to a user drops that user's cached sessions in this process and, through
//! the revocation feed, in every other process sharing the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::AuthError;
use crate::model::{RequestMeta, Session, Timestamp, User, UserUpdate};
use crate::service::{delta, Authenticated, SignedIn, Warden};
use crate::store::{SessionFilter, StoreError};
use crate::token::{new_id, TokenHash};
use crate::validate;

/// Permissions: resource -> actions (`{"user": ["ban"]}`).
pub type Statements = BTreeMap<String, Vec<String>>;

/// BetterAuth's default statements: every action a role can be given.
pub const DEFAULT_STATEMENTS: &[(&str, &[&str])] = &[
    (
        "user",
        &[
            "create",
            "list",
            "set-role",
            "ban",
            "impersonate",
            "impersonate-admins",
            "delete",
            "set-password",
            "set-email",
            "set-phone",
            "get",
            "update",
        ],
    ),
    ("session", &["list", "revoke", "delete"]),
];

fn statements(s: &[(&str, &[&str])]) -> Statements {
    s.iter()
        .map(|(r, a)| (r.to_string(), a.iter().map(|a| a.to_string()).collect()))
        .collect()
}

/// Roles and what each may do. BetterAuth's `admin` and `user` roles
/// always exist; configured roles are added (or replace those by name).
#[derive(Clone, Debug)]
pub struct AccessControl {
    roles: BTreeMap<String, Statements>,
}

impl Default for AccessControl {
    fn default() -> Self {
        let mut roles = BTreeMap::new();
        // BetterAuth's `admin` role: every action but `impersonate-admins`.
        let mut admin = statements(DEFAULT_STATEMENTS);
        for actions in admin.values_mut() {
            actions.retain(|a| a != "impersonate-admins");
        }
        roles.insert("admin".to_owned(), admin);
        roles.insert(
            "user".to_owned(),
            statements(&[("user", &[]), ("session", &[])]),
        );
        AccessControl { roles }
    }
}

impl AccessControl {
    /// The default roles plus `custom`. Every action must be one of the
    /// default statements'.
    pub fn with_roles(custom: BTreeMap<String, Statements>) -> Result<Self, String> {
        let known = statements(DEFAULT_STATEMENTS);
        let mut ac = AccessControl::default();
        for (role, perms) in custom {
            if role.is_empty() || role.contains(',') || role.trim() != role {
                return Err(format!(
                    "role {role:?}: names cannot be empty or hold commas or spaces"
                ));
            }
            for (resource, actions) in &perms {
                let Some(allowed) = known.get(resource) else {
                    return Err(format!(
                        "role {role:?}: unknown resource {resource:?} (known: user, session)"
                    ));
                };
                if let Some(a) = actions.iter().find(|a| !allowed.contains(a)) {
                    return Err(format!(
                        "role {role:?}: unknown action {a:?} on {resource:?} (known: {})",
                        allowed.join(", ")
                    ));
                }
            }
            ac.roles.insert(role, perms);
        }
        Ok(ac)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// BetterAuth's `role.authorize(request)` with the `AND` connector:
    /// every requested resource must be known to the role and every
    /// requested action allowed; an empty action list authorizes nothing.
    pub fn role_allows(&self, role: &str, request: &Statements) -> bool {
        let Some(granted) = self.roles.get(role) else {
            return false;
        };
        if request.is_empty() {
            return false;
        }
        request.iter().all(|(resource, actions)| {
            granted.get(resource).is_some_and(|allowed| {
                !actions.is_empty() && actions.iter().all(|a| allowed.contains(a))
            })
        })
    }
}

/// The `[admin]` settings.
#[derive(Clone, Debug)]
pub struct AdminSettings {
    /// These users are admins whatever their role (BetterAuth's
    /// `adminUserIds`).
    pub user_ids: Vec<String>,
    /// The role of new users, and of users whose role is empty.
    pub default_role: String,
    /// Roles that count as admin (cannot be impersonated without the
    /// `impersonate-admins` permission).
    pub admin_roles: Vec<String>,
    pub roles: AccessControl,
    /// How long an impersonation session lasts (default 1 hour).
    pub impersonation_session_duration: Duration,
    pub default_ban_reason: Option<String>,
    pub default_ban_expires_in: Option<Duration>,
    /// Admins may impersonate admins (BetterAuth's `allowImpersonatingAdmins`).
    pub allow_impersonating_admins: bool,
    /// What a banned user is told when signing in.
    pub banned_user_message: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            user_ids: Vec::new(),
            default_role: "user".into(),
            admin_roles: vec!["admin".into()],
            roles: AccessControl::default(),
            impersonation_session_duration: Duration::from_secs(3600),
            default_ban_reason: None,
            default_ban_expires_in: None,
            allow_impersonating_admins: false,
            banned_user_message: "You have been banned from this application. Please contact support if you believe this is an error.".into(),
        }
    }
}

impl AdminSettings {
    /// Checks that the roles named in the settings exist.
    pub fn validate(&self) -> Result<(), String> {
        for r in self.admin_roles.iter().chain([&self.default_role]) {
            if !self.roles.has_role(r) {
                return Err(format!(
                    "role {r:?} is not defined (defined: {})",
                    self.roles.role_names().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }

    /// BetterAuth's `hasPermission`: listed admin ids may do anything;
    /// otherwise one of the user's roles (comma-separated, the default role
    /// if empty) must allow every requested action.
    pub fn has_permission(&self, user_id: &str, role: Option<&str>, request: &Statements) -> bool {
        if !user_id.is_empty() && self.user_ids.iter().any(|id| id == user_id) {
            return true;
        }
        self.roles_of(role)
            .any(|r| self.roles.role_allows(r, request))
    }

    fn roles_of<'a>(&'a self, role: Option<&'a str>) -> impl Iterator<Item = &'a str> {
        role.filter(|r| !r.is_empty())
            .unwrap_or(&self.default_role)
            .split(',')
            .map(str::trim)
    }

    /// Is this user an admin (an admin role, or a listed id)?
    pub fn is_admin(&self, user: &User) -> bool {
        self.user_ids.contains(&user.id)
            || self
                .roles_of(user.role.as_deref())
                .any(|r| self.admin_roles.iter().any(|a| a == r))
    }
}

/// What an admin endpoint needs permission for (each has BetterAuth's
/// error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    ListUsers,
    GetUser,
    CreateUser,
    UpdateUser,
    SetRole,
    Ban,
    Impersonate,
    ListSessions,
    RevokeSessions,
    Delete,
    SetPassword,
    SetEmail,
    /// Reading the audit trail (Warden's; needs `user:list`).
    ReadAudit,
    /// Turning a user's two-factor off (Warden's; a credential, so it needs
    /// `user:set-password`).
    ResetTwoFactor,
}

impl AdminAction {
    /// The permission BetterAuth checks for it.
    pub fn permission(self) -> (&'static str, &'static str) {
        use AdminAction as A;
        match self {
            A::ListUsers | A::ReadAudit => ("user", "list"),
            A::GetUser => ("user", "get"),
            A::CreateUser => ("user", "create"),
            A::UpdateUser => ("user", "update"),
            A::SetRole => ("user", "set-role"),
            A::Ban => ("user", "ban"),
            A::Impersonate => ("user", "impersonate"),
            A::ListSessions => ("session", "list"),
            A::RevokeSessions => ("session", "revoke"),
            A::Delete => ("user", "delete"),
            A::SetPassword | A::ResetTwoFactor => ("user", "set-password"),
            A::SetEmail => ("user", "set-email"),
        }
    }
}

/// Why an admin operation was refused although the caller may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    CannotBanYourself,
    CannotRemoveYourself,
    CannotImpersonateAdmins,
    /// The role is not defined.
    UnknownRole,
    NoDataToUpdate,
    /// The session is an impersonation: the admin cannot change the
    /// target's credentials or start another impersonation.
    WhileImpersonating,
    /// `stop-impersonating` from a session that is not an impersonation.
    NotImpersonating,
}

impl std::fmt::Display for AdminRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdminRefusal::CannotBanYourself => "you cannot ban yourself",
            AdminRefusal::CannotRemoveYourself => "you cannot remove yourself",
            AdminRefusal::CannotImpersonateAdmins => "you cannot impersonate admins",
            AdminRefusal::UnknownRole => "you are not allowed to set a non-existent role value",
            AdminRefusal::NoDataToUpdate => "no data to update",
            AdminRefusal::WhileImpersonating => {
                "not allowed while impersonating a user: stop impersonating first"
            }
            AdminRefusal::NotImpersonating => "you are not impersonating anyone",
        })
    }
}

/// Who performs an admin operation.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per request, never stored in bulk
pub enum Actor {
    /// A signed-in user, through an API: permissions are checked.
    User {
        user: User,
        session: Session,
        meta: RequestMeta,
    },
    /// The operator, through the `warden` command line: trusted.
    Cli { name: String },
}

impl Actor {
    pub fn user(auth: &Authenticated, meta: RequestMeta) -> Self {
        Actor::User {
            user: auth.user.clone(),
            session: auth.session.clone(),
            meta,
        }
    }

    /// The command line, named after the operating-system user.
    pub fn cli() -> Self {
        let who = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor::Cli {
            name: format!("cli:{who}"),
        }
    }

    fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User { user, .. } => Some(&user.id),
            Actor::Cli { .. } => None,
        }
    }

    fn label(&self) -> &str {
        match self {
            Actor::User { user, .. } => &user.email,
            Actor::Cli { name } => name,
        }
    }

    fn impersonating(&self) -> bool {
        matches!(self, Actor::User { session, .. } if session.impersonated_by.is_some())
    }
}

/// A field of `user` that listing can search, filter or sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserField {
    Id,
    Name,
    Email,
    EmailVerified,
    Image,
    Role,
    Banned,
    BanReason,
    BanExpires,
    CreatedAt,
    UpdatedAt,
}

/// The kind of value a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Bool,
    Time,
}

impl UserField {
    pub const ALL: &'static [UserField] = &[
        UserField::Id,
        UserField::Name,
        UserField::Email,
        UserField::EmailVerified,
        UserField::Image,
        UserField::Role,
        UserField::Banned,
        UserField::BanReason,
        UserField::BanExpires,
        UserField::CreatedAt,
        UserField::UpdatedAt,
    ];

    /// BetterAuth's (and the column's) name.
    pub fn name(self) -> &'static str {
        use UserField as F;
        match self {
            F::Id => "id",
            F::Name => "name",
            F::Email => "email",
            F::EmailVerified => "emailVerified",
            F::Image => "image",
            F::Role => "role",
            F::Banned => "banned",
            F::BanReason => "banReason",
            F::BanExpires => "banExpires",
            F::CreatedAt => "createdAt",
            F::UpdatedAt => "updatedAt",
        }
    }

    pub fn kind(self) -> FieldKind {
        match self {
            UserField::EmailVerified | UserField::Banned => FieldKind::Bool,
            UserField::BanExpires | UserField::CreatedAt | UserField::UpdatedAt => FieldKind::Time,
            _ => FieldKind::Text,
        }
    }

    pub fn parse(field: &'static str, name: &str) -> Result<Self, AuthError> {
        UserField::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                AuthError::invalid(
                    field,
                    format!(
                        "unknown field {name:?}; one of: {}",
                        UserField::ALL
                            .iter()
                            .map(|f| f.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

/// How a value is compared (BetterAuth's `whereOperators`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
}

impl Operator {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, AuthError> {
        use Operator as O;
        Ok(match s {
            "eq" => O::Eq,
            "ne" => O::Ne,
            "lt" => O::Lt,
            "lte" => O::Lte,
            "gt" => O::Gt,
            "gte" => O::Gte,
            "in" => O::In,
            "not_in" => O::NotIn,
            "contains" => O::Contains,
            "starts_with" => O::StartsWith,
            "ends_with" => O::EndsWith,
            _ => {
                return Err(AuthError::invalid(
                    field,
                    format!("unknown operator {s:?}; one of: eq, ne, lt, lte, gt, gte, in, not_in, contains, starts_with, ends_with"),
                ))
            }
        })
    }
}

/// A typed value to compare a field with.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Text(String),
    Bool(bool),
    Time(Timestamp),
    /// For `in` / `not_in` on text fields.
    TextList(Vec<String>),
}

/// One condition of a user listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: UserField,
    pub op: Operator,
    pub value: FieldValue,
}

impl Condition {
    /// Builds a condition from text values as a client sends them, checking
    /// that the operator and value suit the field.
    pub fn parse(
        field_name: &'static str,
        field: UserField,
        op: Operator,
        values: &[String],
    ) -> Result<Self, AuthError> {
        const MAX_LIST: usize = 100;
        let one = || -> Result<&String, AuthError> {
            match values {
                [v] => Ok(v),
                _ => Err(AuthError::invalid(
                    field_name,
                    "this operator takes a single value",
                )),
            }
        };
        let value = match (field.kind(), op) {
            (FieldKind::Text, Operator::In | Operator::NotIn) => {
                if values.is_empty() || values.len() > MAX_LIST {
                    return Err(AuthError::invalid(
                        field_name,
                        format!("in / not_in take 1 to {MAX_LIST} values"),
                    ));
                }
                FieldValue::TextList(values.to_vec())
            }
            (_, Operator::In | Operator::NotIn) => {
                return Err(AuthError::invalid(
                    field_name,
                    "in / not_in apply to text fields only",
                ))
            }
            (FieldKind::Text, _) => FieldValue::Text(one()?.clone()),
            (FieldKind::Bool, Operator::Eq | Operator::Ne) => match one()?.as_str() {
                "true" => FieldValue::Bool(true),
                "false" => FieldValue::Bool(false),
                v => {
                    return Err(AuthError::invalid(
                        field_name,
                        format!("{:?} takes true or false, not {v:?}", field.name()),
                    ))
                }
            },
            (FieldKind::Bool, _) => {
                return Err(AuthError::invalid(
                    field_name,
                    format!("{:?} can only be compared with eq or ne", field.name()),
                ))
            }
            (FieldKind::Time, Operator::Contains | Operator::StartsWith | Operator::EndsWith) => {
                return Err(AuthError::invalid(
                    field_name,
                    format!(
                        "{:?} is a date: use eq, ne, lt, lte, gt or gte",
                        field.name()
                    ),
                ))
            }
            (FieldKind::Time, _) => {
                let v = one()?;
                let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| {
                    AuthError::invalid(field_name, "dates are RFC 3339 (2026-01-31T12:00:00Z)")
                })?;
                FieldValue::Time(t.to_utc())
            }
        };
        Ok(Condition { field, op, value })
    }
}

/// A page of users to list.
#[derive(Clone, Debug, PartialEq)]
pub struct UserQuery {
    /// Every one of these must hold ...
    pub conditions: Vec<Condition>,
    /// ... and, if there are any, at least one of these (a search in the
    /// email or the name).
    pub any_of: Vec<Condition>,
    pub sort: Option<(UserField, bool)>,
    pub limit: u32,
    pub offset: u64,
}

impl UserQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for UserQuery {
    fn default() -> Self {
        UserQuery {
            conditions: Vec::new(),
            any_of: Vec::new(),
            sort: None,
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// A user created by an admin.
#[derive(Clone, Debug, Default)]
pub struct NewUserByAdmin {
    pub email: String,
    /// `None`: no credential account (the user signs in another way).
    pub password: Option<String>,
    pub name: String,
    pub image: Option<String>,
    pub email_verified: bool,
    /// `None`: the default role.
    pub roles: Option<Vec<String>>,
}

/// Changes an admin makes to a user. `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AdminUserUpdate {
    pub name: Option<String>,
    pub image: Option<Option<String>>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub banned: Option<bool>,
    pub ban_reason: Option<Option<String>>,
    pub ban_expires: Option<Option<Timestamp>>,
}

impl AdminUserUpdate {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.image.is_none()
            && self.email.is_none()
            && self.email_verified.is_none()
            && self.roles.is_none()
            && self.banned.is_none()
            && self.ban_reason.is_none()
            && self.ban_expires.is_none()
    }

    fn touches_ban(&self) -> bool {
        self.banned.is_some() || self.ban_reason.is_some() || self.ban_expires.is_some()
    }

    /// The names of the fields it changes (for the audit trail).
    fn field_names(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("image", self.image.is_some()),
            ("email", self.email.is_some()),
            ("emailVerified", self.email_verified.is_some()),
            ("role", self.roles.is_some()),
            ("banned", self.banned.is_some()),
            ("banReason", self.ban_reason.is_some()),
            ("banExpires", self.ban_expires.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect()
    }
}

/// One row of the audit trail.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: Timestamp,
    /// The acting user's id (`None` for the command line).
    pub actor_id: Option<String>,
    /// The acting user's email, or `cli:<os user>`.
    pub actor: String,
    /// `user.ban`, `session.revoke`, `impersonation.start`, ...
    pub action: String,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// What changed, by name; never a credential.
    pub detail: Value,
}

/// A page of users.
#[derive(Clone, Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// How often the revocation feed is read, and how far back.
const FEED_LOOKBACK: Duration = Duration::from_secs(3);

fn perm(action: AdminAction) -> Statements {
    let (r, a) = action.permission();
    BTreeMap::from([(r.to_owned(), vec![a.to_owned()])])
}

impl Warden {
    pub fn admin_settings(&self) -> &AdminSettings {
        &self.settings.admin
    }

    /// Is `actor` allowed `action`? The command line always is.
    pub fn may(&self, actor: &Actor, action: AdminAction) -> bool {
        match actor {
            Actor::Cli { .. } => true,
            Actor::User { user, .. } => {
                self.settings
                    .admin
                    .has_permission(&user.id, user.role.as_deref(), &perm(action))
            }
        }
    }

    fn require(&self, actor: &Actor, action: AdminAction) -> Result<(), AuthError> {
        if self.may(actor, action) {
            return Ok(());
        }
        tracing::warn!(
            user_id = actor.user_id().unwrap_or(""),
            ?action,
            "admin operation refused: no permission"
        );
        Err(AuthError::NotAllowed(action))
    }

    async fn target(&self, user_id: &str) -> Result<User, AuthError> {
        if user_id.is_empty() || user_id.len() > 256 {
            return Err(AuthError::NoSuchUser);
        }
        self.store
            .find_user(user_id)
            .await?
            .ok_or(AuthError::NoSuchUser)
    }

    /// Checks role names against the defined roles; joins them for storage.
    fn roles_value(&self, roles: &[String]) -> Result<String, AuthError> {
        if roles.is_empty() {
            return Err(AuthError::invalid("role", "at least one role is required"));
        }
        for r in roles {
            if !self.settings.admin.roles.has_role(r) {
                return Err(AuthError::AdminRefused(AdminRefusal::UnknownRole));
            }
        }
        Ok(roles.join(","))
    }

    /// Writes an audit row. A failure is logged loudly but does not undo
    /// the action, which has happened.
    async fn audit(&self, actor: &Actor, action: &str, target: Option<&str>, detail: Value) {
        let (ip, ua) = match actor {
            Actor::User { meta, .. } => (meta.ip_address.clone(), meta.user_agent.clone()),
            Actor::Cli { .. } => (None, None),
        };
        let entry = AuditEntry {
            id: new_id(),
            at: self.now(),
            actor_id: actor.user_id().map(str::to_owned),
            actor: actor.label().to_owned(),
            action: action.to_owned(),
            target_id: target.map(str::to_owned),
            ip_address: ip,
            user_agent: ua,
            detail,
        };
        if let Err(e) = self.store.insert_audit(&entry).await {
            tracing::error!(error = %e, action, "audit row not written");
        }
        tracing::info!(
            actor = %entry.actor,
            action,
            target_id = target.unwrap_or(""),
            "admin action"
        );
    }

    /// Drops the user's cached sessions here and, through the revocation
    /// feed, in every other process that shares the database.
    pub(crate) async fn user_changed(&self, user_id: &str) {
        self.forget_user(user_id);
        if let Err(e) = self.store.publish_revocation(user_id, self.now()).await {
            tracing::warn!(error = %e, "revocation not published to other instances");
        }
    }

    /// Refuses a banned user (BetterAuth's session-creation hook). A ban
    /// whose expiry has passed is lifted instead.
    pub(crate) async fn check_not_banned(&self, user: &mut User) -> Result<(), AuthError> {
        if !user.banned {
            return Ok(());
        }
        let t = self.now();
        if user.is_banned(t) {
            tracing::info!(user_id = %user.id, "sign-in refused: user is banned");
            return Err(AuthError::Banned {
                message: self.settings.admin.banned_user_message.clone(),
            });
        }
        let lift = UserUpdate {
            banned: Some(false),
            ban_reason: Some(None),
            ban_expires: Some(None),
            ..UserUpdate::default()
        };
        if let Some(u) = self.store.update_user(&user.id, &lift, t).await? {
            *user = u;
        }
        tracing::info!(user_id = %user.id, "ban expired and lifted");
        Ok(())
    }

    /// Lists users: search, filter, sort and paginate.
    pub async fn admin_list_users(
        &self,
        actor: &Actor,
        query: &UserQuery,
    ) -> Result<UserPage, AuthError> {
        self.require(actor, AdminAction::ListUsers)?;
        let mut q = query.clone();
        q.limit = q.limit.clamp(1, UserQuery::MAX_LIMIT);
        let (users, total) = self.store.list_users(&q).await?;
        Ok(UserPage {
            users,
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    pub async fn admin_get_user(&self, actor: &Actor, user_id: &str) -> Result<User, AuthError> {
        self.require(actor, AdminAction::GetUser)?;
        self.target(user_id).await
    }

    /// The user with this email (for the command line and lookups).
    pub async fn admin_find_by_email(&self, actor: &Actor, email: &str) -> Result<User, AuthError> {
        self.require(actor, AdminAction::GetUser)?;
        let email = validate::email(email)?;
        Ok(self
            .store
            .find_user_by_email(&email)
            .await?
            .ok_or(AuthError::NoSuchUser)?
            .0)
    }

    pub async fn admin_create_user(
        &self,
        actor: &Actor,
        new: NewUserByAdmin,
    ) -> Result<User, AuthError> {
        self.require(actor, AdminAction::CreateUser)?;
        let role = match &new.roles {
            Some(roles) => {
                self.require(actor, AdminAction::SetRole)?;
                self.roles_value(roles)?
            }
            None => self.settings.admin.default_role.clone(),
        };
        let email = validate::email(&new.email)?;
        let name = validate::name(&new.name)?;
        let image = new.image.as_deref().map(validate::image).transpose()?;
        let hash = match &new.password {
            Some(p) => {
                self.settings.password.check_new(p, Some(&email))?;
                Some(self.hasher().hash(p).await?)
            }
            None => None,
        };
        let t = self.now();
        let user = User {
            id: new_id(),
            name,
            email,
            email_verified: new.email_verified,
            image,
            two_factor_enabled: false,
            role: Some(role),
            banned: false,
            ban_reason: None,
            ban_expires: None,
            created_at: t,
            updated_at: t,
        };
        let stored = match &hash {
            Some(h) => {
                self.store
                    .insert_user_with_password(&user, &user.id, h)
                    .await
            }
            None => self.store.insert_user(&user).await,
        };
        match stored {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        self.metrics
            .sign_up(warden_telemetry::metrics::SignUpMethod::Admin);
        self.audit(
            actor,
            "user.create",
            Some(&user.id),
            json!({"role": user.role, "password": hash.is_some()}),
        )
        .await;
        Ok(user)
    }

    pub async fn admin_update_user(
        &self,
        actor: &Actor,
        user_id: &str,
        update: AdminUserUpdate,
    ) -> Result<User, AuthError> {
        self.require(actor, AdminAction::UpdateUser)?;
        if update.is_empty() {
            return Err(AuthError::AdminRefused(AdminRefusal::NoDataToUpdate));
        }
        let role = match &update.roles {
            Some(roles) => {
                self.require(actor, AdminAction::SetRole)?;
                Some(Some(self.roles_value(roles)?))
            }
            None => None,
        };
        if update.touches_ban() {
            self.require(actor, AdminAction::Ban)?;
            if update.banned == Some(true) && actor.user_id() == Some(user_id) {
                return Err(AuthError::AdminRefused(AdminRefusal::CannotBanYourself));
            }
        }
        let email = match &update.email {
            Some(e) => {
                self.require(actor, AdminAction::SetEmail)?;
                Some(validate::email(e)?)
            }
            None => None,
        };
        if update.email_verified.is_some() {
            self.require(actor, AdminAction::SetEmail)?;
        }
        let patch = UserUpdate {
            name: update.name.as_deref().map(validate::name).transpose()?,
            image: match &update.image {
                None => None,
                Some(None) => Some(None),
                Some(Some(i)) => Some(Some(validate::image(i)?)),
            },
            email,
            email_verified: update.email_verified,
            role,
            banned: update.banned,
            ban_reason: update.ban_reason.clone(),
            ban_expires: update.ban_expires,
        };
        self.target(user_id).await?;
        let user = match self.store.update_user(user_id, &patch, self.now()).await {
            Ok(u) => u.ok_or(AuthError::NoSuchUser)?,
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        if update.banned == Some(true) {
            self.end_all_sessions(user_id).await?;
        }
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "user.update",
            Some(user_id),
            json!({"fields": update.field_names()}),
        )
        .await;
        Ok(user)
    }

    pub async fn admin_set_role(
        &self,
        actor: &Actor,
        user_id: &str,
        roles: &[String],
    ) -> Result<User, AuthError> {
        self.require(actor, AdminAction::SetRole)?;
        let value = self.roles_value(roles)?;
        let before = self.target(user_id).await?;
        let patch = UserUpdate {
            role: Some(Some(value.clone())),
            ..UserUpdate::default()
        };
        let user = self
            .store
            .update_user(user_id, &patch, self.now())
            .await?
            .ok_or(AuthError::NoSuchUser)?;
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "user.set-role",
            Some(user_id),
            json!({"from": before.role, "to": value}),
        )
        .await;
        Ok(user)
    }

    /// Sets (or creates) a user's password. The password itself is never
    /// recorded anywhere but as its hash.
    pub async fn admin_set_password(
        &self,
        actor: &Actor,
        user_id: &str,
        new_password: &str,
    ) -> Result<(), AuthError> {
        self.require(actor, AdminAction::SetPassword)?;
        if actor.impersonating() {
            return Err(AuthError::AdminRefused(AdminRefusal::WhileImpersonating));
        }
        let user = self.target(user_id).await?;
        self.settings
            .password
            .check_new(new_password, Some(&user.email))?;
        let hash = self.hasher().hash(new_password).await?;
        self.store
            .set_user_password(&user.id, &user.id, &hash, self.now())
            .await?;
        self.audit(actor, "user.set-password", Some(user_id), json!({}))
            .await;
        Ok(())
    }

    pub async fn admin_remove_user(&self, actor: &Actor, user_id: &str) -> Result<(), AuthError> {
        self.require(actor, AdminAction::Delete)?;
        if actor.user_id() == Some(user_id) {
            return Err(AuthError::AdminRefused(AdminRefusal::CannotRemoveYourself));
        }
        let user = self.target(user_id).await?;
        if !self.store.delete_user(user_id).await? {
            return Err(AuthError::NoSuchUser);
        }
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "user.delete",
            Some(user_id),
            json!({"email": user.email}),
        )
        .await;
        Ok(())
    }

    /// Turns a user's two-factor off (for a user who lost their
    /// authenticator and backup codes) and forgets their trusted devices;
    /// their sessions stay. Returns the user as it is now.
    pub async fn admin_reset_two_factor(
        &self,
        actor: &Actor,
        user_id: &str,
    ) -> Result<User, AuthError> {
        self.require(actor, AdminAction::ResetTwoFactor)?;
        if actor.impersonating() {
            return Err(AuthError::AdminRefused(AdminRefusal::WhileImpersonating));
        }
        let user = self.target(user_id).await?;
        let was_on = user.two_factor_enabled;
        self.store.disable_two_factor(user_id, self.now()).await?;
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "user.two_factor_reset",
            Some(user_id),
            json!({"wasEnabled": was_on}),
        )
        .await;
        self.target(user_id).await
    }

    /// Bans a user and ends all their sessions at once.
    pub async fn admin_ban_user(
        &self,
        actor: &Actor,
        user_id: &str,
        reason: Option<&str>,
        expires_in: Option<Duration>,
    ) -> Result<User, AuthError> {
        self.require(actor, AdminAction::Ban)?;
        // (The update below answers whether the user exists.)
        if actor.user_id() == Some(user_id) {
            return Err(AuthError::AdminRefused(AdminRefusal::CannotBanYourself));
        }
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if r.chars().count() > 1000 => {
                return Err(AuthError::invalid(
                    "banReason",
                    "must be at most 1000 characters",
                ))
            }
            Some(r) => r.to_owned(),
            None => self
                .settings
                .admin
                .default_ban_reason
                .clone()
                .unwrap_or_else(|| "No reason".into()),
        };
        let t = self.now();
        let expires =
            match expires_in.or(self.settings.admin.default_ban_expires_in) {
                Some(d) => Some(t.checked_add_signed(delta(d)).ok_or_else(|| {
                    AuthError::invalid("banExpiresIn", "is too far in the future")
                })?),
                None => None,
            };
        let patch = UserUpdate {
            banned: Some(true),
            ban_reason: Some(Some(reason.clone())),
            ban_expires: Some(expires),
            ..UserUpdate::default()
        };
        let user = self
            .store
            .update_user(user_id, &patch, t)
            .await?
            .ok_or(AuthError::NoSuchUser)?;
        let ended = self.end_all_sessions(user_id).await?;
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "user.ban",
            Some(user_id),
            json!({"reason": reason, "expires": expires.map(|e| e.to_rfc3339()), "sessionsEnded": ended}),
        )
        .await;
        Ok(user)
    }

    pub async fn admin_unban_user(&self, actor: &Actor, user_id: &str) -> Result<User, AuthError> {
        self.require(actor, AdminAction::Ban)?;
        let patch = UserUpdate {
            banned: Some(false),
            ban_reason: Some(None),
            ban_expires: Some(None),
            ..UserUpdate::default()
        };
        let user = self
            .store
            .update_user(user_id, &patch, self.now())
            .await?
            .ok_or(AuthError::NoSuchUser)?;
        self.user_changed(user_id).await;
        self.audit(actor, "user.unban", Some(user_id), json!({}))
            .await;
        Ok(user)
    }

    async fn end_all_sessions(&self, user_id: &str) -> Result<usize, AuthError> {
        let deleted = self
            .store
            .delete_sessions(user_id, SessionFilter::All)
            .await?;
        self.forget_tokens(&deleted);
        Ok(deleted.len())
    }

    /// Every session of a user, impersonations included, newest first.
    pub async fn admin_list_sessions(
        &self,
        actor: &Actor,
        user_id: &str,
    ) -> Result<Vec<Session>, AuthError> {
        self.require(actor, AdminAction::ListSessions)?;
        self.target(user_id).await?;
        Ok(self.store.list_user_sessions(user_id, self.now()).await?)
    }

    /// Ends one session, named by its id (what listings show) or its token.
    /// Returns false if there was none.
    pub async fn admin_revoke_session(
        &self,
        actor: &Actor,
        handle: &str,
    ) -> Result<bool, AuthError> {
        self.require(actor, AdminAction::RevokeSessions)?;
        if handle.is_empty() || handle.len() > 256 {
            return Ok(false);
        }
        let hash = TokenHash::of(handle);
        let Some((user_id, token_hash)) = self
            .store
            .delete_session_by_handle(handle, hash.as_str())
            .await?
        else {
            return Ok(false);
        };
        self.forget_tokens(&[token_hash]);
        self.user_changed(&user_id).await;
        self.audit(actor, "session.revoke", Some(&user_id), json!({}))
            .await;
        Ok(true)
    }

    /// Ends every session of a user; returns how many.
    pub async fn admin_revoke_sessions(
        &self,
        actor: &Actor,
        user_id: &str,
    ) -> Result<usize, AuthError> {
        self.require(actor, AdminAction::RevokeSessions)?;
        self.target(user_id).await?;
        let n = self.end_all_sessions(user_id).await?;
        self.user_changed(user_id).await;
        self.audit(
            actor,
            "session.revoke-all",
            Some(user_id),
            json!({"sessionsEnded": n}),
        )
        .await;
        Ok(n)
    }

    /// Starts a session as `target_id` for the admin behind `actor`, marked
    /// `impersonatedBy`, lasting `impersonation_session_duration` and never
    /// extended. Admins cannot be impersonated without
    /// `impersonate-admins`; an impersonation cannot start another.
    pub async fn admin_impersonate(
        &self,
        actor: &Actor,
        target_id: &str,
    ) -> Result<SignedIn, AuthError> {
        self.require(actor, AdminAction::Impersonate)?;
        let Actor::User {
            user: admin, meta, ..
        } = actor
        else {
            return Err(AuthError::invalid(
                "actor",
                "impersonation needs a signed-in admin",
            ));
        };
        if actor.impersonating() {
            return Err(AuthError::AdminRefused(AdminRefusal::WhileImpersonating));
        }
        let mut target = self.target(target_id).await?;
        let admins = &self.settings.admin;
        if admins.is_admin(&target)
            && !(admins.allow_impersonating_admins
                || admins.has_permission(
                    &admin.id,
                    admin.role.as_deref(),
                    &BTreeMap::from([("user".into(), vec!["impersonate-admins".into()])]),
                ))
        {
            return Err(AuthError::AdminRefused(
                AdminRefusal::CannotImpersonateAdmins,
            ));
        }
        self.check_not_banned(&mut target).await?;
        let (mut session, token) = self.new_session(&target.id, meta.clone(), false);
        let t = self.now();
        session.expires_at = t
            .checked_add_signed(delta(admins.impersonation_session_duration))
            .ok_or_else(|| {
                AuthError::Internal("impersonation_session_duration is too long".into())
            })?;
        session.impersonated_by = Some(admin.id.clone());
        self.store.insert_session(&session).await?;
        self.audit(
            actor,
            "impersonation.start",
            Some(&target.id),
            json!({"sessionId": session.id, "expiresAt": session.expires_at.to_rfc3339()}),
        )
        .await;
        Ok(SignedIn {
            user: target,
            session,
            token,
            trusted_device: None,
        })
    }

    /// Ends an impersonation session; returns the impersonating admin's id
    /// (whose own session the caller restores).
    pub async fn admin_stop_impersonating(
        &self,
        auth: &Authenticated,
        token: &str,
        meta: RequestMeta,
    ) -> Result<String, AuthError> {
        let Some(admin_id) = auth.session.impersonated_by.clone() else {
            return Err(AuthError::AdminRefused(AdminRefusal::NotImpersonating));
        };
        self.sign_out(token).await?;
        let actor = match self.store.find_user(&admin_id).await? {
            Some(admin) => Actor::User {
                user: admin,
                session: auth.session.clone(),
                meta,
            },
            None => Actor::Cli {
                name: format!("deleted-user:{admin_id}"),
            },
        };
        self.audit(
            &actor,
            "impersonation.stop",
            Some(&auth.user.id),
            json!({"sessionId": auth.session.id}),
        )
        .await;
        Ok(admin_id)
    }

    /// The audit trail (of one user, session or other target, if given),
    /// newest first.
    pub async fn admin_audit(
        &self,
        actor: &Actor,
        target_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<AuditEntry>, u64), AuthError> {
        self.require(actor, AdminAction::ReadAudit)?;
        Ok(self
            .store
            .list_audit(target_id, limit.clamp(1, UserQuery::MAX_LIMIT), offset)
            .await?)
    }

    /// Refuses an operation on the user's own credentials (password, email,
    /// second factor) from an impersonation session.
    pub(crate) fn not_impersonating(&self, auth: &Authenticated) -> Result<(), AuthError> {
        if auth.session.impersonated_by.is_some() {
            tracing::warn!(user_id = %auth.user.id, "credential change refused during impersonation");
            return Err(AuthError::AdminRefused(AdminRefusal::WhileImpersonating));
        }
        Ok(())
    }

    /// Follows the revocation feed: every `every`, drops the cached
    /// sessions of users changed by other processes (another server, the
    /// command line). Runs until the task is dropped. Without a session
    /// cache there is nothing to drop and this returns at once.
    pub async fn follow_revocations(self: Arc<Self>, every: Duration) {
        if !self.has_session_cache() {
            return;
        }
        let mut seen: HashMap<i64, Timestamp> = HashMap::new();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let t = self.now();
            // Rows are read again for a few seconds: a row whose
            // transaction committed late (after a later row) is not missed.
            let since = t - delta(FEED_LOOKBACK);
            match self.store.revocations_since(since).await {
                Ok(rows) => {
                    for (seq, user_id) in rows {
                        if seen.insert(seq, t).is_none() {
                            self.apply_peer_invalidation(&crate::Invalidation::User(user_id));
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "revocation feed not read"),
            }
            seen.retain(|_, at| *at > since - delta(FEED_LOOKBACK));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &[&str])]) -> Statements {
        statements(pairs)
    }

    /// BetterAuth's `hasPermission` with its default roles.
    #[test]
    fn default_roles_follow_betterauth() {
        let s = AdminSettings::default();
        let ban = req(&[("user", &["ban"])]);
        assert!(s.has_permission("u1", Some("admin"), &ban));
        assert!(!s.has_permission("u1", Some("user"), &ban));
        // No role: the default role (user).
        assert!(!s.has_permission("u1", None, &ban));
        assert!(!s.has_permission("u1", Some(""), &ban));
        // Several roles, comma-separated: any one is enough.
        assert!(s.has_permission("u1", Some("user,admin"), &ban));
        // Every action of every resource must be allowed (AND).
        assert!(s.has_permission(
            "u1",
            Some("admin"),
            &req(&[("user", &["ban", "list"]), ("session", &["revoke"])])
        ));
        assert!(!s.has_permission(
            "u1",
            Some("admin"),
            &req(&[("user", &["ban", "impersonate-admins"])])
        ));
        // An empty list authorizes nothing; an unknown resource neither.
        assert!(!s.has_permission("u1", Some("admin"), &req(&[("user", &[])])));
        assert!(!s.has_permission("u1", Some("admin"), &req(&[("organization", &["create"])])));
        assert!(!s.has_permission("u1", Some("admin"), &Statements::new()));
        // An unknown role grants nothing.
        assert!(!s.has_permission("u1", Some("root"), &ban));
    }

    #[test]
    fn admin_user_ids_may_do_anything() {
        let s = AdminSettings {
            user_ids: vec!["boss".into()],
            ..AdminSettings::default()
        };
        let all = req(&[("user", &["impersonate-admins"])]);
        assert!(s.has_permission("boss", Some("user"), &all));
        assert!(!s.has_permission("", Some("user"), &all));
    }

    #[test]
    fn custom_roles_are_checked() {
        let support = BTreeMap::from([("support".to_string(), req(&[("user", &["list", "get"])]))]);
        let s = AdminSettings {
            roles: AccessControl::with_roles(support).unwrap(),
            ..AdminSettings::default()
        };
        assert!(s.has_permission("u", Some("support"), &req(&[("user", &["get"])])));
        assert!(!s.has_permission("u", Some("support"), &req(&[("user", &["ban"])])));
        assert!(s.roles.has_role("admin") && s.roles.has_role("user"));
        for bad in [
            BTreeMap::from([("x".to_string(), req(&[("user", &["fly"])]))]),
            BTreeMap::from([("x".to_string(), req(&[("org", &["create"])]))]),
            BTreeMap::from([("a,b".to_string(), req(&[("user", &["get"])]))]),
        ] {
            assert!(AccessControl::with_roles(bad).is_err());
        }
        let s = AdminSettings {
            admin_roles: vec!["superadmin".into()],
            ..AdminSettings::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn conditions_check_their_values() {
        let f = |field, op, v: &[&str]| {
            Condition::parse(
                "filterValue",
                field,
                op,
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert!(f(UserField::Banned, Operator::Eq, &["true"]).is_ok());
        assert!(f(UserField::Banned, Operator::Eq, &["yes"]).is_err());
        assert!(f(UserField::Banned, Operator::Lt, &["true"]).is_err());
        assert!(f(
            UserField::CreatedAt,
            Operator::Gt,
            &["2026-01-01T00:00:00Z"]
        )
        .is_ok());
        assert!(f(UserField::CreatedAt, Operator::Gt, &["yesterday"]).is_err());
        assert!(f(UserField::CreatedAt, Operator::Contains, &["2026"]).is_err());
        assert!(f(UserField::Email, Operator::In, &["a", "b"]).is_ok());
        assert!(f(UserField::Email, Operator::In, &[]).is_err());
        assert!(f(UserField::Email, Operator::Eq, &["a", "b"]).is_err());
        assert!(f(UserField::Banned, Operator::In, &["true"]).is_err());
        assert!(UserField::parse("sortBy", "password").is_err());
    }
}
