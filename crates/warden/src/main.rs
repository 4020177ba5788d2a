use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use warden::config::{Config, Overrides};
use warden::secrets::SecretsFile;
use warden::{telemetry, Server};

mod admin_cli;

/// Warden: an authentication server.
#[derive(Parser)]
#[command(name = "warden", version, about)]
struct Cli {
    /// Configuration file (default: ./warden.toml if it exists).
    #[arg(long, global = true, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    /// sqlite:PATH, postgres://... or mysql://... (DATABASE_URL; default sqlite:warden.db).
    /// Before or after the command: `warden --database-url U user list`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Address to listen on (WARDEN_LISTEN; default 127.0.0.1:4000).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users: roles, bans, sessions, deletion (on the configured
    /// database; running servers see a change at once on PostgreSQL, within
    /// a quarter of a second elsewhere).
    User {
        #[command(subcommand)]
        command: admin_cli::UserCommand,
    },
    /// Read the audit trail of administrative actions.
    Audit {
        #[command(subcommand)]
        command: admin_cli::AuditCommand,
    },
    /// Manage development secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Generate code from the API's OpenAPI document, built in-process from
    /// the configuration (no server, no database).
    Gen {
        #[command(subcommand)]
        command: GenCommand,
    },
    /// Time one password hash with the configured argon2id parameters.
    #[command(hide = true)]
    BenchHash {
        #[arg(long, default_value_t = 20)]
        iterations: u32,
    },
}

#[derive(Subcommand)]
enum GenCommand {
    /// A TypeScript client in the shape of Encore's (`encore gen client`):
    /// `new Client(Local).auth.signUp({...})`. Or, with `--lang openapi`, the
    /// OpenAPI document itself. The same binary and configuration give the
    /// same bytes.
    Client {
        /// Write to this file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// typescript or openapi.
        #[arg(long, value_enum, default_value_t = warden::gen::Lang::Typescript)]
        lang: warden::gen::Lang,
        /// Services (OpenAPI tags) to include, comma-separated (default:
        /// all but betterauth, which BetterAuth's own client serves).
        #[arg(long, value_delimiter = ',')]
        services: Option<Vec<String>>,
        /// The client's `Local` URL (default: the configured base_url).
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Store a development secret (prompted for, or read from stdin).
    Set { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // An administration command's error is its one line on stderr, not also
    // a log record.
    let log_errors = !matches!(
        cli.command,
        Some(Command::User { .. } | Command::Audit { .. } | Command::Gen { .. })
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if log_errors {
                tracing::error!("{e}");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let command = cli.command.unwrap_or(Command::Serve { listen: None });
    let overrides = Overrides {
        listen: match &command {
            Command::Serve { listen } => *listen,
            _ => None,
        },
        database_url: cli.database_url.clone(),
    };
    let mut config = Config::load(cli.config.as_deref(), &overrides)?;
    if matches!(command, Command::Gen { .. }) {
        // The output is the generated file; only errors are worth a line.
        config.log.level = "error".into();
    }
    if matches!(command, Command::User { .. } | Command::Audit { .. }) {
        // The output is the command's; the audit trail records what it did.
        // Warnings (a change not published to running servers) still show;
        // RUST_LOG overrides.
        config.log.level = "warn".into();
    }
    if !matches!(command, Command::Serve { .. }) {
        // Only the server keeps and exports traces.
        config.telemetry.keep_traces = Some(0);
        config.telemetry.otlp_endpoint = Some(String::new());
    }
    let telemetry = telemetry::init(&config)?;
    match command {
        Command::Serve { .. } => {
            let server = Server::build(&config).await?;
            let served = server.run(warden::shutdown_signal()).await;
            telemetry.flush();
            served?;
        }
        Command::Migrate => {
            warden::migrate(&config).await?;
            println!(
                "migrations applied to {}",
                warden_store::redact_url(&config.database_url)
            );
        }
        Command::Secret {
            command: SecretCommand::Set { name },
        } => {
            let name = warden::secrets::canonical_name(&name);
            warden::secrets::check_name(&name)?;
            let value = read_secret(&name)?;
            let file = SecretsFile::new(&config.secrets_file);
            file.set(&name, &value)?;
            println!("secret {name} stored in {}", file.path().display());
        }
        Command::User { command, .. } => admin_cli::user(&config, command).await?,
        Command::Audit { command, .. } => admin_cli::audit(&config, command).await?,
        Command::Gen {
            command:
                GenCommand::Client {
                    output,
                    lang,
                    services,
                    base_url,
                },
        } => {
            let text = warden::gen::client(&config, lang, services, base_url)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text.as_bytes())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
            }
        }
        Command::BenchHash { iterations } => bench_hash(&config, iterations).await?,
    }
    Ok(())
}

fn read_secret(name: &str) -> Result<SecretString, Box<dyn std::error::Error>> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Enter the value of {name}: "))?
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\r', '\n']).to_owned()
    };
    if value.is_empty() {
        return Err("the secret value is empty".into());
    }
    Ok(value.into())
}

async fn bench_hash(config: &Config, iterations: u32) -> Result<(), Box<dyn std::error::Error>> {
    let settings = warden::warden_settings(config);
    let hasher = warden_core::PasswordHasher::new(&settings.argon2, 1, 16)?;
    hasher.hash("warm-up password").await?;
    let start = Instant::now();
    for _ in 0..iterations {
        hasher.hash("correct horse battery staple").await?;
    }
    let per_hash = start.elapsed().as_secs_f64() / f64::from(iterations.max(1));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "argon2id m={}KiB t={} p={}",
        settings.argon2.memory_kib, settings.argon2.iterations, settings.argon2.parallelism
    );
    println!("single_hash_ms={:.2}", per_hash * 1000.0);
    println!("cores={cores}");
    println!("hash_ceiling_per_s={:.1}", cores as f64 / per_hash);
    // The same hashes `cores` at a time, as a loaded server runs them:
    // argon2 is memory-bound, so this is below `cores / single` when the
    // cores share a memory bus and cache.
    let hasher = std::sync::Arc::new(warden_core::PasswordHasher::new(
        &settings.argon2,
        cores,
        16 * cores,
    )?);
    let total = iterations.max(1) as usize * cores;
    let start = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for i in 0..total {
        if running.len() >= 2 * cores {
            running.join_next().await.expect("jobs are running")??;
        }
        let hasher = hasher.clone();
        running.spawn(async move { hasher.hash(&format!("correct horse {i}")).await });
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    println!(
        "parallel_hashes_per_s={:.1}",
        total as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
