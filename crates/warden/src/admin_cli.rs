//! `warden user ...` and `warden audit ...`: administration from the
//! operator's shell, on the configured database, with or without a server
//! running on it.
//!
//! Every command acts as [`Actor::cli`] (the trusted operator, recorded in
//! the audit trail as `cli:<os user>`) through the same `Warden` admin
//! operations the HTTP API calls, so each change writes its audit row and
//! reaches running servers at once (PostgreSQL's NOTIFY), or through the
//! revocation feed within a quarter of a second. Nothing printed here is a credential: users are shown by id,
//! email, name and role, the audit trail by what its rows record.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Subcommand;
use warden::config::Config;
use warden_core::{
    Actor, AdminRefusal, AuthError, Condition, FieldValue, Operator, Timestamp, User, UserField,
    UserQuery, Warden,
};

/// `warden user ...`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Give a user one or more roles, replacing theirs (`admin`, or
    /// several comma-separated: `admin,support`).
    SetRole {
        email: String,
        /// Defined roles: `admin`, `user` and those under [admin.roles].
        role: String,
    },
    /// List users, oldest first: id, email, name, role, banned, created.
    List {
        /// Only users whose email or name contains this (any case).
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// At most this many users (1 to 1000).
        #[arg(long, value_name = "N", default_value_t = UserQuery::DEFAULT_LIMIT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(UserQuery::MAX_LIMIT)))]
        limit: u32,
    },
    /// Ban a user: sign-in is refused and every session ends at once.
    Ban {
        email: String,
        /// Why (recorded on the user and in the audit trail); default:
        /// admin.default_ban_reason, else "No reason".
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Lift the ban after this long (`30m`, `7d`, `1h 30m`); default:
        /// admin.default_ban_expires_in, else never.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// Lift a user's ban.
    Unban { email: String },
    /// End every session of a user (they must sign in again).
    RevokeSessions { email: String },
    /// Delete a user with their sessions and accounts (asks first).
    Delete {
        email: String,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `warden audit ...`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// The audit trail, newest first: time, actor, action, target, ip,
    /// detail.
    List {
        /// At most this many rows (1 to 1000).
        #[arg(long, value_name = "N", default_value_t = 50,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(UserQuery::MAX_LIMIT)))]
        limit: u32,
        /// Skip this many of the newest rows.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: u64,
    },
}

/// A command's failure: one line, printed after `error: `.
#[derive(Debug)]
pub struct CliError(String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<warden::StartError> for CliError {
    fn from(e: warden::StartError) -> Self {
        CliError(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(format!("cannot write the output: {e}"))
    }
}

impl From<AuthError> for CliError {
    fn from(e: AuthError) -> Self {
        CliError(e.to_string())
    }
}

/// The longest ban `--expires` accepts.
const MAX_BAN: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub async fn user(config: &Config, command: UserCommand) -> Result<(), CliError> {
    // Checked before the database is opened: bad input changes nothing.
    let expires_in = match &command {
        UserCommand::Ban {
            expires: Some(e), ..
        } => Some(parse_expires(e)?),
        _ => None,
    };
    let warden = warden::open_warden(config).await?;
    let w = warden.as_ref();
    let actor = Actor::cli();
    let mut out = std::io::stdout().lock();
    match command {
        UserCommand::SetRole { email, role } => {
            let roles = parse_roles(&role)?;
            let before = find(w, &actor, &email).await?;
            let after = w
                .admin_set_role(&actor, &before.id, &roles)
                .await
                .map_err(|e| role_error(w, &roles, e))?;
            writeln!(
                out,
                "{}: role set to {} (was {})",
                after.email,
                role_of(w, &after),
                role_of(w, &before)
            )?;
        }
        UserCommand::List { search, limit } => {
            let (users, total) = list(w, &actor, search.as_deref(), limit).await?;
            let now = w.now();
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.id.clone(),
                        u.email.clone(),
                        u.name.clone(),
                        role_of(w, u),
                        banned(u, now),
                        time(u.created_at),
                    ]
                })
                .collect();
            if rows.is_empty() {
                writeln!(out, "no users")?;
            } else {
                table(
                    &mut out,
                    &["ID", "EMAIL", "NAME", "ROLE", "BANNED", "CREATED"],
                    &rows,
                )?;
                let s = if total == 1 { "" } else { "s" };
                writeln!(out, "{} of {total} user{s}", rows.len())?;
            }
        }
        UserCommand::Ban { email, reason, .. } => {
            let user = find(w, &actor, &email).await?;
            let user = w
                .admin_ban_user(&actor, &user.id, reason.as_deref(), expires_in)
                .await
                .map_err(|e| match e {
                    AuthError::Invalid {
                        field: "banReason",
                        message,
                    } => CliError(format!("--reason: {message}")),
                    e => e.into(),
                })?;
            let until = match user.ban_expires {
                Some(t) => format!("until {}", time(t)),
                None => "with no end".to_owned(),
            };
            writeln!(
                out,
                "{} banned {until} (reason: {}); their sessions are ended",
                user.email,
                clean(user.ban_reason.as_deref().unwrap_or(""))
            )?;
        }
        UserCommand::Unban { email } => {
            let user = find(w, &actor, &email).await?;
            if !user.banned {
                writeln!(out, "{} is not banned; nothing changed", user.email)?;
            } else {
                let user = w.admin_unban_user(&actor, &user.id).await?;
                writeln!(out, "{} unbanned", user.email)?;
            }
        }
        UserCommand::RevokeSessions { email } => {
            let user = find(w, &actor, &email).await?;
            let n = w.admin_revoke_sessions(&actor, &user.id).await?;
            let s = if n == 1 { "" } else { "s" };
            writeln!(out, "{n} session{s} of {} ended", user.email)?;
        }
        UserCommand::Delete { email, yes } => {
            let user = find(w, &actor, &email).await?;
            if !yes {
                confirm_delete(&user)?;
            }
            w.admin_remove_user(&actor, &user.id).await?;
            writeln!(out, "{} deleted (id {})", user.email, user.id)?;
        }
    }
    Ok(())
}

pub async fn audit(config: &Config, command: AuditCommand) -> Result<(), CliError> {
    let warden = warden::open_warden(config).await?;
    let actor = Actor::cli();
    let mut out = std::io::stdout().lock();
    match command {
        AuditCommand::List { limit, offset } => {
            let (entries, total) = warden.admin_audit(&actor, None, limit, offset).await?;
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        time(e.at),
                        e.actor.clone(),
                        e.action.clone(),
                        dash(&e.target_id),
                        dash(&e.ip_address),
                        e.detail.to_string(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                writeln!(out, "no entries (the trail holds {total})")?;
            } else {
                table(
                    &mut out,
                    &["TIME", "ACTOR", "ACTION", "TARGET", "IP", "DETAIL"],
                    &rows,
                )?;
                writeln!(
                    out,
                    "entries {}-{} of {total}, newest first",
                    offset + 1,
                    offset + rows.len() as u64
                )?;
            }
        }
    }
    Ok(())
}

/// The user with this email, or "no user with email ...".
async fn find(w: &Warden, actor: &Actor, email: &str) -> Result<User, CliError> {
    w.admin_find_by_email(actor, email)
        .await
        .map_err(|e| match e {
            AuthError::NoSuchUser => CliError(format!("no user with email {}", clean(email))),
            AuthError::Invalid {
                field: "email",
                message,
            } => CliError(format!("{:?} {message}", clean(email))),
            e => e.into(),
        })
}

/// `admin,support` -> `["admin", "support"]` (blanks and repeats dropped).
fn parse_roles(arg: &str) -> Result<Vec<String>, CliError> {
    let mut roles: Vec<String> = Vec::new();
    for r in arg.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !roles.iter().any(|x| x == r) {
            roles.push(r.to_owned());
        }
    }
    if roles.is_empty() {
        return Err(CliError(
            "no role given (e.g. admin, or admin,support)".into(),
        ));
    }
    Ok(roles)
}

/// The domain refuses an undefined role without naming it; say which one,
/// and which roles are defined.
fn role_error(w: &Warden, roles: &[String], e: AuthError) -> CliError {
    match e {
        AuthError::AdminRefused(AdminRefusal::UnknownRole) => {
            let defined = &w.admin_settings().roles;
            let unknown: Vec<String> = roles
                .iter()
                .filter(|r| !defined.has_role(r))
                .map(|r| format!("{:?}", clean(r)))
                .collect();
            CliError(format!(
                "unknown role{} {} (defined: {})",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                defined.role_names().collect::<Vec<_>>().join(", ")
            ))
        }
        e => e.into(),
    }
}

/// A user's roles as stored, or the default role they stand for.
fn role_of(w: &Warden, u: &User) -> String {
    match u.role.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => clean(r),
        None => clean(&w.admin_settings().default_role),
    }
}

fn banned(u: &User, now: Timestamp) -> String {
    match (u.is_banned(now), u.ban_expires) {
        (false, _) => "no".into(),
        (true, None) => "yes".into(),
        (true, Some(t)) => format!("until {}", time(t)),
    }
}

/// `--expires`: a humantime duration, more than zero and at most 100 years.
fn parse_expires(arg: &str) -> Result<Duration, CliError> {
    let d = humantime_serde::re::humantime::parse_duration(arg.trim()).map_err(|e| {
        CliError(format!(
            "--expires: {:?} is not a duration ({e}); write e.g. 30m, 7d or 1h 30m",
            clean(arg)
        ))
    })?;
    if d.is_zero() {
        return Err(CliError("--expires: must be more than zero".into()));
    }
    if d > MAX_BAN {
        return Err(CliError(
            "--expires: at most 100 years (leave it out for a ban with no end)".into(),
        ));
    }
    Ok(d)
}

/// Users matching `search` in their email or name (any case), oldest first,
/// and how many match in all.
async fn list(
    w: &Warden,
    actor: &Actor,
    search: Option<&str>,
    limit: u32,
) -> Result<(Vec<User>, u64), CliError> {
    let text = search.map(str::trim).filter(|s| !s.is_empty());
    let contains = |field, text: &str| Condition {
        field,
        op: Operator::Contains,
        value: FieldValue::Text(text.to_owned()),
    };
    let query = UserQuery {
        any_of: text
            .map(|t| vec![contains(UserField::Email, t), contains(UserField::Name, t)])
            .unwrap_or_default(),
        limit,
        ..UserQuery::default()
    };
    let page = w.admin_list_users(actor, &query).await?;
    Ok((page.users, page.total))
}

/// Asks on the terminal; refuses without one.
fn confirm_delete(user: &User) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError(format!(
            "not deleting {} without confirmation: there is no terminal to ask on (pass --yes)",
            user.email
        )));
    }
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "Delete {} ({}, id {}) with all their sessions and accounts? This cannot be undone. [y/N] ",
        user.email,
        clean(&user.name),
        user.id
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError(format!(
            "not confirmed: {} not deleted",
            user.email
        )))
    }
}

fn time(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Text from the database or the command line as it may be printed: control
/// characters (a name holding terminal escapes) are shown escaped.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Columns padded to their widest cell, two spaces apart; cells cleaned.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()))
        .collect();
    let mut widths = vec![0; header.len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_split_trimmed_and_deduplicated() {
        assert_eq!(
            parse_roles(" admin, support ,admin,").unwrap(),
            ["admin", "support"]
        );
        assert!(parse_roles(" , ").is_err());
    }

    #[test]
    fn expires_names_the_flag() {
        assert_eq!(parse_expires("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_expires("1h 30m").unwrap(), Duration::from_secs(5400));
        for bad in ["nonsense", "0s", "1000y", ""] {
            let e = parse_expires(bad).unwrap_err().to_string();
            assert!(e.starts_with("--expires: "), "{e}");
        }
    }

    #[test]
    fn tables_align_and_escape_control_characters() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["A", "BB", "C"],
            &[
                vec!["xyz".into(), "1".into(), "last".into()],
                vec!["q".into(), "evil\u{1b}[2J".into(), "".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A    BB             C\nxyz  1              last\nq    evil\\u{1b}[2J\n"
        );
    }
}
