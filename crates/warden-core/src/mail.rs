//! Mail: what the flows send (password reset, notices), through a
//! [`Mailer`]. The binary provides SMTP; [`Outbox`] is the development
//! transport, which keeps the last messages in memory and logs each one's
//! subject and links (so a developer can follow them without a mail server).

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;

/// One message, in plain text and HTML.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-time code the message carries, if any (email OTP, two-factor
    /// by email): the development outbox logs it as the field `code`.
    pub code: Option<String>,
}

/// The bodies carry single-use tokens: never printed by `Debug`.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: Email) -> Result<(), MailError>;
}

/// The development transport: keeps the last `capacity` messages and logs
/// each one's recipient, subject and links. It prints links with their
/// tokens by design; production refuses to run with it.
pub struct Outbox {
    messages: Mutex<Kept>,
    capacity: usize,
    /// Woken at every message (the dashboard's live outbox waits on it).
    arrived: tokio::sync::Notify,
}

#[derive(Default)]
struct Kept {
    list: VecDeque<OutboxEntry>,
    next_id: u64,
}

/// A message the outbox kept, numbered from 1 in arrival order.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: u64,
    pub at: crate::Timestamp,
    pub email: Email,
}

impl OutboxEntry {
    /// The `http(s)://` links of the plain-text body.
    pub fn links(&self) -> Vec<&str> {
        links(&self.email.text)
    }
}

fn links(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .collect()
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            messages: Mutex::new(Kept {
                list: VecDeque::new(),
                next_id: 1,
            }),
            capacity: capacity.max(1),
            arrived: tokio::sync::Notify::new(),
        }
    }

    /// The kept messages, oldest first.
    pub fn messages(&self) -> Vec<Email> {
        self.lock().list.iter().map(|e| e.email.clone()).collect()
    }

    /// The kept messages numbered `after + 1` and later, oldest first.
    pub fn entries_after(&self, after: u64) -> Vec<OutboxEntry> {
        self.lock()
            .list
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect()
    }

    /// Completes at the next message. To miss none, create (and enable) it
    /// before reading with [`Outbox::entries_after`].
    pub fn arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.arrived.notified()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new(50)
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let links = links(&email.text);
        // Never inside a trace (`parent: None`): the line holds the address
        // and the link with its token (or the one-time code). It goes to the
        // log only, as the development outbox must.
        match email.code.as_deref() {
            Some(code) => tracing::info!(
                parent: None,
                to = %email.to,
                subject = %email.subject,
                links = ?links,
                code = %code,
                "email (development outbox; not sent)"
            ),
            None => tracing::info!(
                parent: None,
                to = %email.to,
                subject = %email.subject,
                links = ?links,
                "email (development outbox; not sent)"
            ),
        }
        {
            let mut m = self.lock();
            if m.list.len() == self.capacity {
                m.list.pop_front();
            }
            let id = m.next_id;
            m.next_id += 1;
            m.list.push_back(OutboxEntry {
                id,
                at: chrono::Utc::now(),
                email,
            });
        }
        self.arrived.notify_waiters();
        Ok(())
    }
}

/// Which message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    PasswordReset,
    PasswordChanged,
    VerifyEmail,
    /// To the owner of an email someone tried to sign up with again.
    AccountExists,
    /// To the new address: confirm the change.
    ChangeEmail,
    /// To the old address: a change was asked for.
    EmailChangeRequested,
    /// A sign-in link (`[magic_link]`).
    MagicLink,
    /// A one-time sign-in code (`[email_otp]`, type `sign-in`).
    SignInCode,
    /// A one-time code confirming the address (type `email-verification`).
    VerifyEmailCode,
    /// A one-time code resetting the password (type `forget-password`).
    PasswordResetCode,
    /// The second step of a sign-in by email (`[two_factor] email_otp`).
    TwoFactorCode,
    /// A one-time code confirming a new address (email change by code).
    ChangeEmailCode,
}

const ALL_TEMPLATES: [Template; 12] = [
    Template::PasswordReset,
    Template::PasswordChanged,
    Template::VerifyEmail,
    Template::AccountExists,
    Template::ChangeEmail,
    Template::EmailChangeRequested,
    Template::MagicLink,
    Template::SignInCode,
    Template::VerifyEmailCode,
    Template::PasswordResetCode,
    Template::TwoFactorCode,
    Template::ChangeEmailCode,
];

impl Template {
    /// The template's name (`password-reset`, ...): its file name, and the
    /// `template` of its span and metric.
    pub fn name(self) -> &'static str {
        match self {
            Template::PasswordReset => "password-reset",
            Template::PasswordChanged => "password-changed",
            Template::VerifyEmail => "verify-email",
            Template::AccountExists => "account-exists",
            Template::ChangeEmail => "change-email",
            Template::EmailChangeRequested => "email-change-requested",
            Template::MagicLink => "magic-link",
            Template::SignInCode => "sign-in-code",
            Template::VerifyEmailCode => "verify-email-code",
            Template::PasswordResetCode => "password-reset-code",
            Template::TwoFactorCode => "two-factor-code",
            Template::ChangeEmailCode => "change-email-code",
        }
    }

    fn default_parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Template::PasswordReset => (
                "Reset your {{app_name}} password",
                "Someone asked to reset the password of your {{app_name}} account ({{email}}).\n\nTo choose a new password, open this link within {{expires_in}}:\n\n{{link}}\n\nIf it was not you, ignore this message: your password stays as it is.\n",
                "<p>Someone asked to reset the password of your {{app_name}} account ({{email}}).</p>\n<p><a href=\"{{link}}\">Choose a new password</a> (the link works once, within {{expires_in}}).</p>\n<p>If it was not you, ignore this message: your password stays as it is.</p>\n",
            ),
            Template::PasswordChanged => (
                "Your {{app_name}} password was changed",
                "The password of your {{app_name}} account ({{email}}) was just changed, and every session was signed out.\n\nIf this was not you, reset your password at once and contact support.\n",
                "<p>The password of your {{app_name}} account ({{email}}) was just changed, and every session was signed out.</p>\n<p>If this was not you, reset your password at once and contact support.</p>\n",
            ),
            Template::VerifyEmail => (
                "Confirm your email for {{app_name}}",
                "Confirm that {{email}} is your address by opening this link within {{expires_in}}:\n\n{{link}}\n\nIf you did not sign up for {{app_name}}, ignore this message.\n",
                "<p>Confirm that {{email}} is your address:</p>\n<p><a href=\"{{link}}\">Confirm my email</a> (within {{expires_in}}).</p>\n<p>If you did not sign up for {{app_name}}, ignore this message.</p>\n",
            ),
            Template::AccountExists => (
                "Someone tried to sign up to {{app_name}} with your email",
                "Someone just tried to create a {{app_name}} account with {{email}}, which already has one.\n\nIf it was you, sign in instead (or reset your password). If not, you can ignore this message: nothing changed.\n",
                "<p>Someone just tried to create a {{app_name}} account with {{email}}, which already has one.</p>\n<p>If it was you, sign in instead (or reset your password). If not, you can ignore this message: nothing changed.</p>\n",
            ),
            Template::ChangeEmail => (
                "Confirm your new email for {{app_name}}",
                "To make {{email}} the address of your {{app_name}} account, open this link within {{expires_in}}:\n\n{{link}}\n\nIf you did not ask for this, ignore this message.\n",
                "<p>To make {{email}} the address of your {{app_name}} account:</p>\n<p><a href=\"{{link}}\">Confirm the change</a> (within {{expires_in}}).</p>\n<p>If you did not ask for this, ignore this message.</p>\n",
            ),
            Template::EmailChangeRequested => (
                "A change of your {{app_name}} email was requested",
                "Someone signed in to your {{app_name}} account ({{email}}) asked to move it to another address. Nothing changes unless that address confirms.\n\nIf this was not you, change your password now.\n",
                "<p>Someone signed in to your {{app_name}} account ({{email}}) asked to move it to another address. Nothing changes unless that address confirms.</p>\n<p>If this was not you, change your password now.</p>\n",
            ),
            Template::MagicLink => (
                "Sign in to {{app_name}}",
                "To sign in to {{app_name}} as {{email}}, open this link within {{expires_in}}:\n\n{{link}}\n\nThe link works once. If you did not ask for it, ignore this message.\n",
                "<p>To sign in to {{app_name}} as {{email}}:</p>\n<p><a href=\"{{link}}\">Sign in</a> (the link works once, within {{expires_in}}).</p>\n<p>If you did not ask for it, ignore this message.</p>\n",
            ),
            Template::SignInCode => (
                "Your {{app_name}} sign-in code",
                "Your code to sign in to {{app_name}} as {{email}} is:\n\n{{code}}\n\nIt works once, within {{expires_in}}. If you did not ask for it, ignore this message.\n",
                "<p>Your code to sign in to {{app_name}} as {{email}} is:</p>\n<p><strong>{{code}}</strong></p>\n<p>It works once, within {{expires_in}}. If you did not ask for it, ignore this message.</p>\n",
            ),
            Template::VerifyEmailCode => (
                "Your {{app_name}} verification code",
                "Your code to confirm that {{email}} is your address is:\n\n{{code}}\n\nIt works once, within {{expires_in}}. If you did not sign up for {{app_name}}, ignore this message.\n",
                "<p>Your code to confirm that {{email}} is your address is:</p>\n<p><strong>{{code}}</strong></p>\n<p>It works once, within {{expires_in}}. If you did not sign up for {{app_name}}, ignore this message.</p>\n",
            ),
            Template::PasswordResetCode => (
                "Your {{app_name}} password reset code",
                "Someone asked to reset the password of your {{app_name}} account ({{email}}). The code is:\n\n{{code}}\n\nIt works once, within {{expires_in}}. If it was not you, ignore this message: your password stays as it is.\n",
                "<p>Someone asked to reset the password of your {{app_name}} account ({{email}}). The code is:</p>\n<p><strong>{{code}}</strong></p>\n<p>It works once, within {{expires_in}}. If it was not you, ignore this message: your password stays as it is.</p>\n",
            ),
            Template::ChangeEmailCode => (
                "Confirm your new email for {{app_name}}",
                "To make {{email}} the address of your {{app_name}} account, enter this code within {{expires_in}}:\n\n{{code}}\n\nIf you did not ask for this, ignore this message.\n",
                "<p>To make {{email}} the address of your {{app_name}} account, enter this code:</p>\n<p><strong>{{code}}</strong></p>\n<p>It works once, within {{expires_in}}. If you did not ask for this, ignore this message.</p>\n",
            ),
            Template::TwoFactorCode => (
                "Your {{app_name}} verification code",
                "Your code to finish signing in to {{app_name}} ({{email}}) is:\n\n{{code}}\n\nIt works once, within {{expires_in}}. If you are not signing in, change your password: someone knows it.\n",
                "<p>Your code to finish signing in to {{app_name}} ({{email}}) is:</p>\n<p><strong>{{code}}</strong></p>\n<p>It works once, within {{expires_in}}. If you are not signing in, change your password: someone knows it.</p>\n",
            ),
        }
    }
}

/// Message templates: built in, or overridden by files
/// `<dir>/<name>.subject.txt`, `<name>.txt` and `<name>.html` (for example
/// `password-reset.txt`). Placeholders: `{{app_name}}`, `{{email}}`,
/// `{{link}}`, `{{code}}` (the code templates), `{{expires_in}}`; values are
/// HTML-escaped in the HTML part.
/// A template's overridden subject, text and HTML (`None`: built in).
type Override = (Template, [Option<String>; 3]);

#[derive(Clone, Debug)]
pub struct Templates {
    pub app_name: String,
    overrides: Vec<Override>,
}

impl Templates {
    pub fn new(app_name: impl Into<String>) -> Self {
        Templates {
            app_name: app_name.into(),
            overrides: vec![],
        }
    }

    /// Reads overrides from `dir` (files that do not exist keep the default).
    pub fn with_dir(mut self, dir: &Path) -> std::io::Result<Self> {
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("templates directory {} not found", dir.display()),
            ));
        }
        for t in ALL_TEMPLATES {
            let read = |suffix: &str| {
                std::fs::read_to_string(dir.join(format!("{}{suffix}", t.name()))).ok()
            };
            self.overrides
                .push((t, [read(".subject.txt"), read(".txt"), read(".html")]));
        }
        Ok(self)
    }

    /// Renders `template` for `to`, with `link` and `expires_in` filled in.
    pub fn render(&self, template: Template, to: &str, link: &str, expires_in: &str) -> Email {
        self.render_with(template, to, link, "", expires_in)
    }

    /// Renders a code template: `code` fills `{{code}}` and is kept in
    /// [`Email::code`].
    pub fn render_code(&self, template: Template, to: &str, code: &str, expires_in: &str) -> Email {
        self.render_with(template, to, "", code, expires_in)
    }

    fn render_with(
        &self,
        template: Template,
        to: &str,
        link: &str,
        code: &str,
        expires_in: &str,
    ) -> Email {
        let (ds, dt, dh) = template.default_parts();
        let o = self.overrides.iter().find(|(t, ..)| *t == template);
        let pick = |i: usize, d: &str| -> String {
            o.and_then(|(_, parts)| parts[i].clone())
                .unwrap_or_else(|| d.to_owned())
        };
        let vars = [
            ("{{app_name}}", self.app_name.as_str()),
            ("{{email}}", to),
            ("{{link}}", link),
            ("{{code}}", code),
            ("{{expires_in}}", expires_in),
        ];
        let fill = |s: String, html: bool| {
            vars.iter().fold(s, |acc, (k, v)| {
                acc.replace(
                    k,
                    &if html {
                        escape_html(v)
                    } else {
                        (*v).to_owned()
                    },
                )
            })
        };
        Email {
            to: to.to_owned(),
            subject: fill(pick(0, ds), false).trim().replace(['\r', '\n'], " "),
            text: fill(pick(1, dt), false),
            html: fill(pick(2, dh), true),
            code: (!code.is_empty()).then(|| code.to_owned()),
        }
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes() {
        let t = Templates::new("Acme <Auth>");
        let e = t.render(
            Template::PasswordReset,
            "a@example.com",
            "https://x.example/r?token=abc&x=1",
            "1 hour",
        );
        assert_eq!(e.subject, "Reset your Acme <Auth> password");
        assert!(e.text.contains("https://x.example/r?token=abc&x=1"));
        assert!(e.html.contains("https://x.example/r?token=abc&amp;x=1"));
        assert!(e.html.contains("Acme &lt;Auth&gt;"));
        assert!(!format!("{e:?}").contains("token"));
    }

    #[test]
    fn code_templates_carry_the_code() {
        let t = Templates::new("App");
        let e = t.render_code(Template::SignInCode, "c@example.com", "042917", "5 minutes");
        assert_eq!(e.code.as_deref(), Some("042917"));
        // Not in the subject: subjects show on lock screens and in `Debug`.
        assert!(!e.subject.contains("042917"));
        assert!(e.text.contains("042917") && e.html.contains("042917"));
        assert!(e.text.contains("5 minutes"));
        assert!(!format!("{e:?}").contains("042917"));
        let e = t.render(
            Template::MagicLink,
            "c@example.com",
            "https://l/x?token=t",
            "5 minutes",
        );
        assert_eq!(e.code, None);
        assert!(e.text.contains("https://l/x?token=t"));
    }

    #[test]
    fn overrides_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password-reset.subject.txt"),
            "Hi {{email}}\n",
        )
        .unwrap();
        let t = Templates::new("App").with_dir(dir.path()).unwrap();
        let e = t.render(
            Template::PasswordReset,
            "b@example.com",
            "https://l",
            "1 hour",
        );
        assert_eq!(e.subject, "Hi b@example.com");
        assert!(e.text.contains("https://l"), "the default text stays");
        assert!(Templates::new("App")
            .with_dir(&dir.path().join("nope"))
            .is_err());
    }
}
