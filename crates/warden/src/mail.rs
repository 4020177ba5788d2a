//! The SMTP transport (lettre), for production mail.

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use warden_core::{Email, MailError, Mailer};

use crate::config::SmtpTls;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(
        host: &str,
        port: u16,
        tls: SmtpTls,
        username: Option<&str>,
        password: Option<SecretString>,
        from: &str,
    ) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("mail.from {from:?} is not an address: {e}"))?;
        let builder = match tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("mail.smtp: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("mail.smtp: {e}"))?,
        };
        let mut builder = builder.port(port);
        if let Some(user) = username {
            let password = password.ok_or_else(|| {
                "mail.smtp.username is set but the secret WARDEN_SMTP_PASSWORD is missing"
                    .to_owned()
            })?;
            builder = builder.credentials(Credentials::new(
                user.to_owned(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError(format!("bad recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html),
                    ),
            )
            .map_err(|e| MailError(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError(e.to_string()))?;
        tracing::info!(subject = %email.subject, "email sent");
        Ok(())
    }
}
