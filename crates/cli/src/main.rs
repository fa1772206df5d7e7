//! `recourse`: the command line (section 9 of the contract).

mod catalog_file;
mod demo;
mod oidc_args;
mod report;
mod writes_table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use recourse_client::{GateClient, GateMode, Role, WriteStatus};
use recourse_connector::Connector;
use recourse_core::Bearer;
use recourse_gate::{Gate, GateConfig, SqliteStore, Store};

/// Shown where a `--database-url` would be: never the URL itself, which may
/// hold a password.
fn shown_url(url: &str) -> String {
    format!("{}://…", url.split(':').next().unwrap_or_default())
}

#[derive(Parser)]
#[command(
    name = "recourse",
    version,
    about = "Recoverability as a precondition of every write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one scenario file and print the decision as JSON.
    Check {
        /// `{"catalog", "proposal", "observations"?, "now"?, "window_margin_s"?}`
        scenario: PathBuf,
    },
    /// Run the gate.
    Serve(Box<ServeArgs>),
    /// Manage tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read and decide writes through a running gate.
    #[command(subcommand)]
    Writes(WritesCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The catalog of institutional state.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// An MCP server on stdio, acting as the agent whose token it holds.
    Mcp(McpArgs),
    /// The seed's Monday audit: every kind of write's rollback path, the
    /// context it depends on and who bears the cost, as report.html,
    /// report.csv and report.json.
    Report(report::ReportArgs),
    /// Start a demo gate with the seed's seven cases as live writes (the
    /// README's first command runs this, then opens the console).
    Demo {
        /// An empty directory for the demo's files, database and gate.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7420")]
        listen: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    oidc: oidc_args::OidcArgs,
    /// Where the embedded store, this gate's lock file, its signing key and
    /// (by default) its vault live. With --database-url the store is the
    /// database, and the rest stays here, one directory per gate.
    #[arg(long, env = "RECOURSE_DATA_DIR")]
    data_dir: PathBuf,
    /// The ed25519 key that signs checkpoints of the audit trail; created
    /// (mode 0600) when missing, refused when others may read it. Default:
    /// DATA_DIR/signing.key; keep it (and a backup) off the store's disk.
    #[arg(long, env = "RECOURSE_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// The key that encrypts the proposals the gate keeps until they have
    /// run (secrets in clear inside); created (mode 0600) when missing,
    /// refused when others may read it. Default: DATA_DIR/action.key; keep
    /// it (and a backup) off the store's disk. Without it, held and
    /// in-flight writes cannot run. See docs/secrets.md.
    #[arg(long, env = "RECOURSE_ACTION_KEY")]
    action_key: Option<PathBuf>,
    /// This gate's id, which names the vault a write's local capture (fs,
    /// SQL before-images) is in: only that gate rolls such a write back.
    /// Default: generated once into DATA_DIR/gate.id. Gates on one machine
    /// that share one --vault may share one id.
    #[arg(long, env = "RECOURSE_GATE_ID")]
    gate_id: Option<String>,
    /// A signed checkpoint after this many audit entries...
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: i64,
    /// ... or after this many seconds when anything was added (and one at
    /// shutdown).
    #[arg(long, default_value_t = 300)]
    checkpoint_secs: u64,
    #[arg(long, default_value = "127.0.0.1:7420", env = "RECOURSE_LISTEN")]
    listen: String,
    /// A directory the `fs` connector may write under (repeatable).
    #[arg(long = "fs-root")]
    fs_roots: Vec<PathBuf>,
    /// Where captured trees and before-images go; must lie outside every
    /// root. Default: DATA_DIR/vault.
    #[arg(long)]
    vault: Option<PathBuf>,
    /// A database the `sql` connector may write to: NAME=URL (repeatable).
    #[arg(long = "sql")]
    sql: Vec<String>,
    /// A host the `http` connector may call (repeatable).
    #[arg(long = "http-allow")]
    http_allow: Vec<String>,
    /// A header the gate adds for a host: HOST=NAME:VALUE (repeatable).
    /// Agents never see it; it is redacted from the audit trail.
    #[arg(
        long = "http-secret",
        env = "RECOURSE_HTTP_SECRETS",
        value_delimiter = ';'
    )]
    http_secrets: Vec<String>,
    /// A store shared by several gates: `postgres://USER@HOST/DB` (the
    /// scheme picks the store). Default: the SQLite file in --data-dir.
    #[arg(long, env = "RECOURSE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Seconds a held write waits before it expires.
    // Negative numbers parse, so that `check_serve_args` refuses them by
    // name instead of clap calling `-1` an unexpected argument.
    #[arg(long, default_value_t = 7 * 24 * 3600, allow_negative_numbers = true)]
    hold_ttl_s: i64,
    /// Seconds a gate's claim on a write it is running lasts unless
    /// renewed (renewed while it works). A write a failure left in flight
    /// is taken up by the sweep this long after its last move. Several
    /// gates on one store should use the same value.
    #[arg(long, default_value_t = 30)]
    claim_lease_s: u32,
    /// Distinct approvals needed where BEARER bears the cost: BEARER=N
    /// (repeatable; default patient=2, borrower=2, others 1).
    #[arg(long = "approvals")]
    approvals: Vec<String>,
    /// Seconds before a window closes that it already counts as closing.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    window_margin_s: i64,
    /// Extra JSON keys whose values are redacted (repeatable).
    #[arg(long = "redact")]
    redact: Vec<String>,
    /// Open connections at most; above it the oldest connection that has
    /// sent nothing is closed, else the newcomer gets a 503 at once.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds a connection has to send a request's headers (also how long
    /// a kept-alive connection may sit idle).
    #[arg(long, default_value_t = 10)]
    header_timeout_s: u64,
    /// Requests per second per token (continuously refilled); over it, 429
    /// with `Retry-After`.
    #[arg(long, default_value_t = 50.0)]
    rate_limit: f64,
    /// Requests a token may make at once before --rate-limit applies.
    #[arg(long, default_value_t = 100)]
    rate_burst: u32,
    /// Stored bytes one token's pending writes (held, approved, running)
    /// may hold; a submission above it is refused with 429 and
    /// `Retry-After` (413 if the write alone is larger). 0: no quota.
    #[arg(long, default_value_t = recourse_gate::DEFAULT_QUOTA_BYTES)]
    quota_bytes: u64,
    /// How a write the decision holds is treated: `enforce` (it waits for
    /// a person) or `observe` (captured and run without one, and marked
    /// `observed_hold`; refusals and a freeze still stop writes). One mode
    /// for every gate on the store: given, it is written to the store at
    /// start (audited); not given, the store's applies (`enforce` for a new
    /// store). An admin switches it with `PUT /v1/mode`.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<GateMode>,
    /// A URL the gate POSTs a message to when a write is held, its hold
    /// expires soon, or it fails (repeatable). A URL that is a credential
    /// (a Slack webhook's) stays out of the process list in
    /// RECOURSE_WEBHOOKS instead (several separated by spaces).
    #[arg(
        long = "webhook",
        env = "RECOURSE_WEBHOOKS",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    webhooks: Vec<String>,
    /// A file with the secret that signs each message
    /// (`X-Recourse-Signature`, HMAC-SHA256); refused when others may read
    /// it. Without it messages go unsigned.
    #[arg(long, env = "RECOURSE_WEBHOOK_SECRET_FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// `json` (the gate's own message) or `slack` (`{"text", "blocks"}`).
    #[arg(long, default_value = "json")]
    webhook_format: String,
    /// Seconds before a hold expires that a message says it will.
    #[arg(long, default_value_t = 3600)]
    webhook_expiry_lead_s: u64,
    /// Tries per message and webhook while it fails (unreachable, 408,
    /// 429, 5xx); the outcome goes into the audit trail.
    #[arg(long, default_value_t = 5)]
    webhook_attempts: u32,
    /// Milliseconds to wait after the first failed try, doubled after each
    /// next one (at most a minute).
    #[arg(long, default_value_t = 1000)]
    webhook_backoff_ms: u64,
    /// Milliseconds the gate waits on its store before it refuses a request
    /// with a 503 naming the cause (the store locked by another process, a
    /// table locked in another session, no connection free): SQLite's busy
    /// timeout, PostgreSQL's `lock_timeout` and `statement_timeout`, and
    /// the wait for a pooled connection. A request waits a few of these at
    /// most, never forever. The end-to-end tests shorten it.
    #[arg(long, env = "RECOURSE_STORE_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    store_timeout_ms: u64,
}

fn parse_mode(s: &str) -> Result<GateMode, String> {
    GateMode::parse(s).ok_or_else(|| format!("`{s}`: expected `enforce` or `observe`"))
}

/// The notifier's configuration from the flags; `None` without webhooks.
/// Errors name the flag, never a webhook's URL (a Slack webhook's path is
/// its credential).
fn notify_config(args: &ServeArgs) -> anyhow::Result<Option<recourse_gate::notify::NotifyConfig>> {
    use recourse_gate::notify::{Format, NotifyConfig};
    let format = Format::parse(&args.webhook_format).with_context(|| {
        format!(
            "--webhook-format `{}`: expected `json` or `slack`",
            args.webhook_format
        )
    })?;
    if args.webhook_attempts == 0 {
        bail!("--webhook-attempts 0: must be 1 or more");
    }
    if args.webhooks.is_empty() {
        if args.webhook_secret_file.is_some() {
            bail!("--webhook-secret-file: no --webhook to sign messages for");
        }
        return Ok(None);
    }
    let mut webhooks = Vec::new();
    for (i, w) in args.webhooks.iter().enumerate() {
        let url = reqwest::Url::parse(w)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .with_context(|| {
                format!("--webhook number {}: not an http:// or https:// URL", i + 1)
            })?;
        webhooks.push(url);
    }
    let secret = args
        .webhook_secret_file
        .as_deref()
        .map(|p| {
            recourse_gate::key_file::read_secret(p, "webhook secret")
                .with_context(|| format!("--webhook-secret-file {}", p.display()))
        })
        .transpose()?;
    if secret.is_none() {
        tracing::warn!("--webhook without --webhook-secret-file: messages go unsigned");
    }
    Ok(Some(NotifyConfig {
        webhooks,
        secret,
        format,
        expiry_lead: chrono::Duration::seconds(
            i64::try_from(args.webhook_expiry_lead_s).unwrap_or(i64::MAX / 1000),
        ),
        attempts: args.webhook_attempts,
        first_backoff: std::time::Duration::from_millis(args.webhook_backoff_ms),
        ..NotifyConfig::default()
    }))
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the gate keeps only its hash).
    Create {
        #[command(flatten)]
        store: StoreAt,
        #[arg(long)]
        name: String,
        /// agent, reviewer, risk_officer, incident_lead or admin.
        #[arg(long)]
        role: String,
        /// The token stops working after this many seconds.
        #[arg(long)]
        ttl_s: Option<i64>,
        /// Limit the token's writes to files under this directory
        /// (repeatable). With any of --fs-root, --sql or --http-allow the
        /// token reaches only what they list; with none, everything the
        /// gate serves.
        #[arg(long = "fs-root")]
        fs_roots: Vec<String>,
        /// Limit the token's writes to this `sql` database, by the name the
        /// gate's `--sql NAME=URL` gives it (repeatable).
        #[arg(long = "sql")]
        sql: Vec<String>,
        /// Limit the token's requests to this host (`host` or `host:port`,
        /// matched as the gate's --http-allow; repeatable).
        #[arg(long = "http-allow")]
        http_allow: Vec<String>,
    },
    /// List tokens: names, roles, scopes, expiry, revocation (never
    /// hashes), one JSON object a line.
    List {
        #[command(flatten)]
        store: StoreAt,
    },
    /// Revoke a token: its next request is refused (401), and its open
    /// event streams end.
    Revoke {
        #[command(flatten)]
        store: StoreAt,
        #[arg(long)]
        name: String,
    },
}

/// Where a command finds the gate's store itself (no gate needed): the
/// embedded one in a data directory, or a shared database.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct StoreAt {
    #[arg(long, env = "RECOURSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The shared store (`postgres://…`), as given to `recourse serve`.
    #[arg(long, env = "RECOURSE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

/// Like [`StoreAt`], for commands that may go through a gate instead.
#[derive(Args, Clone)]
#[group(multiple = false)]
struct StoreAtOptional {
    #[arg(long, env = "RECOURSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The shared store (`postgres://…`), as given to `recourse serve`.
    #[arg(long, env = "RECOURSE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl StoreAtOptional {
    fn given(self) -> Option<StoreAt> {
        (self.data_dir.is_some() || self.database_url.is_some()).then_some(StoreAt {
            data_dir: self.data_dir,
            database_url: self.database_url,
        })
    }
}

#[derive(Args)]
struct Remote {
    /// The gate's URL.
    #[arg(long, env = "RECOURSE_GATE", default_value = "http://127.0.0.1:7420")]
    gate: String,
    #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
    token: String,
}

/// `recourse mcp`: the token is optional here so that, missing, the
/// server says which variable to set (a host shows only that line).
#[derive(Args)]
struct McpArgs {
    /// The gate's URL.
    #[arg(long, env = "RECOURSE_GATE", default_value = "http://127.0.0.1:7420")]
    gate: String,
    #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum WritesCommand {
    /// List writes (newest first), as a table.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only writes in this status (`held`: the review queue).
        #[arg(long)]
        status: Option<String>,
        /// Print the gate's JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    Show {
        #[command(flatten)]
        remote: Remote,
        id: String,
    },
    Approve {
        #[command(flatten)]
        remote: Remote,
        id: String,
        /// Why you approve; required where a third party pays or something
        /// external is reached (the gate refuses without it).
        #[arg(long, visible_alias = "reason")]
        comment: Option<String>,
    },
    Reject {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long)]
        reason: String,
    },
    Rollback {
        #[command(flatten)]
        remote: Remote,
        id: String,
        #[arg(long)]
        reason: String,
        /// Overwrite a target that changed after the write.
        #[arg(long)]
        force: bool,
    },
    /// Settle a write whose outcome is unknown (incident leads): say
    /// whether it took effect, and what you checked.
    #[command(group(clap::ArgGroup::new("outcome").required(true).args(["executed", "not_executed"])))]
    Resolve {
        #[command(flatten)]
        remote: Remote,
        id: String,
        /// It took effect: it becomes `executed` (and can be rolled back).
        #[arg(long)]
        executed: bool,
        /// It did not take effect: it becomes `failed`.
        #[arg(long)]
        not_executed: bool,
        /// What you checked, for the audit trail.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Show a database's tables, rows' containment and foreign keys as
    /// catalog resources and edges; with --gate, load them into the gate.
    ImportSql {
        /// The database's name in the gate (`--sql NAME=URL`).
        name: String,
        /// `sqlite:/path/db` or `postgres://…`.
        #[arg(long)]
        url: String,
        /// Load into this gate (needs a risk officer's token).
        #[arg(long)]
        gate: Option<String>,
        #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// The catalog as a file under version control: export, plan, apply,
    /// test (docs/catalog.md).
    #[command(flatten)]
    File(catalog_file::FileCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain: from the store directly (the data directory
    /// or the shared database; no gate needed), or through a gate.
    Verify {
        #[command(flatten)]
        store: StoreAtOptional,
        #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
        gate: Option<String>,
        #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A head exported before (`audit export-head`), kept off the
        /// gate's machine: the trail must contain exactly that head, and its
        /// signature must verify. Needs --data-dir or --database-url.
        #[arg(long, conflicts_with = "gate")]
        anchor: Option<PathBuf>,
    },
    /// Print the newest signed head of the trail (JSON: seq, hash, key_id,
    /// public_key, signature), to keep somewhere the gate cannot write.
    ExportHead {
        #[command(flatten)]
        store: StoreAt,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Command::Check { scenario } = &cli.command {
        return check(scenario);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recourse: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recourse: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Exit 0 with the decision on stdout, or 2 with one line on stderr.
fn check(path: &Path) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match recourse_core::scenario::check_bytes(&bytes, chrono::Utc::now()) {
        Ok(json) => {
            // A closed pipe (`recourse check x.json | head`) is not a crash.
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the message holds.
            eprintln!("{}", e.to_string().replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { .. } => Ok(ExitCode::SUCCESS),
        Command::Serve(args) => serve(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Demo { dir, listen } => demo::run(demo::DemoArgs { dir, listen })
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Token(TokenCommand::Create {
            store,
            name,
            role,
            ttl_s,
            fs_roots,
            sql,
            http_allow,
        }) => {
            let role = Role::parse(&role).with_context(|| {
                let all: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("--role: unknown role `{role}` (one of: {})", all.join(", "))
            })?;
            let store = open_store(&store, true).await?;
            let expires = ttl_s.map(|s| chrono::Utc::now() + chrono::Duration::seconds(s));
            let scope = (!fs_roots.is_empty() || !sql.is_empty() || !http_allow.is_empty())
                .then_some(recourse_client::TokenScope {
                    fs_roots,
                    sql,
                    http_allow,
                });
            let token = recourse_gate::create_scoped_token(
                store.as_ref(),
                "cli",
                &name,
                role,
                expires,
                scope,
            )
            .await
            .map_err(flag_error)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::List { store }) => {
            let store = open_store(&store, false).await?;
            for t in recourse_gate::list_tokens(store.as_ref()).await? {
                println!("{}", serde_json::to_string(&t)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Revoke { store, name }) => {
            let store = open_store(&store, false).await?;
            recourse_gate::revoke_token(store.as_ref(), "cli", &name).await?;
            println!("revoked `{name}`");
            Ok(ExitCode::SUCCESS)
        }
        Command::Writes(cmd) => writes(cmd).await,
        Command::Catalog(CatalogCommand::ImportSql {
            name,
            url,
            gate,
            token,
        }) => import_sql(&name, &url, gate, token).await,
        Command::Catalog(CatalogCommand::File(cmd)) => catalog_file::run(cmd).await,
        Command::Mcp(r) => recourse_mcp::serve_stdio(&r.gate, r.token.as_deref().unwrap_or(""))
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Report(args) => report::run(args).await,
        Command::Audit(AuditCommand::ExportHead { store }) => export_head(&store).await,
        Command::Audit(AuditCommand::Verify {
            store,
            gate,
            token,
            anchor,
        }) => {
            let store = store.given();
            if let Some(anchor) = anchor {
                let store = store.context("--anchor needs --data-dir or --database-url")?;
                return verify_anchor(&store, &anchor).await;
            }
            let v = match (store, gate) {
                (Some(at), _) => {
                    let store = open_store(&at, false).await?;
                    recourse_gate::verify_store_audit(store.as_ref()).await?
                }
                (None, Some(url)) => {
                    let token =
                        token.context("--token (or RECOURSE_TOKEN) is needed with --gate")?;
                    GateClient::new(url, token).verify_audit().await?
                }
                (None, None) => bail!("give --data-dir DIR, --database-url URL or --gate URL"),
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(if v.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

async fn writes(cmd: WritesCommand) -> anyhow::Result<ExitCode> {
    let client = |r: &Remote| GateClient::new(r.gate.clone(), r.token.clone());
    let out = match cmd {
        WritesCommand::List {
            remote,
            status,
            json,
        } => {
            let status = status
                .map(|s| {
                    WriteStatus::parse(&s)
                        .with_context(|| format!("--status: unknown status `{s}`"))
                })
                .transpose()?;
            let writes = client(&remote).writes(status).await?;
            if json {
                serde_json::to_string_pretty(&writes)?
            } else {
                writes_table::render(&writes)
            }
        }
        WritesCommand::Show { remote, id } => {
            serde_json::to_string_pretty(&client(&remote).write(&id).await?)?
        }
        WritesCommand::Approve {
            remote,
            id,
            comment,
        } => serde_json::to_string_pretty(&client(&remote).approve(&id, comment).await?)?,
        WritesCommand::Reject { remote, id, reason } => {
            serde_json::to_string_pretty(&client(&remote).reject(&id, reason).await?)?
        }
        WritesCommand::Rollback {
            remote,
            id,
            reason,
            force,
        } => serde_json::to_string_pretty(&client(&remote).rollback(&id, reason, force).await?)?,
        WritesCommand::Resolve {
            remote,
            id,
            executed,
            reason,
            ..
        } => {
            // clap's `outcome` group makes exactly one of `--executed` and
            // `--not-executed` present, so `executed` alone says which.
            serde_json::to_string_pretty(&client(&remote).resolve(&id, executed, reason).await?)?
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "sql")]
async fn import_sql(
    name: &str,
    url: &str,
    gate: Option<String>,
    token: Option<String>,
) -> anyhow::Result<ExitCode> {
    let catalog = recourse_connector_sql::import_catalog(name, url)
        .await
        .with_context(|| format!("reading the schema of `{name}`"))?;
    println!("{}", serde_json::to_string_pretty(&catalog)?);
    if let Some(gate) = gate {
        let token = token.context("--token (or RECOURSE_TOKEN) is needed with --gate")?;
        let after = GateClient::new(gate, token)
            .upsert_catalog(&catalog)
            .await?;
        eprintln!(
            "loaded {} resources and {} edges; the gate's catalog now holds {} resources",
            catalog.resources.len(),
            catalog.edges.len(),
            after.resources.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "sql"))]
async fn import_sql(
    _: &str,
    _: &str,
    _: Option<String>,
    _: Option<String>,
) -> anyhow::Result<ExitCode> {
    bail!("this build has no sql connector (built without the `sql` feature)")
}

fn parse_pairs<'a>(flag: &str, items: &'a [String]) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .with_context(|| format!("{flag} `{s}`: expected NAME=VALUE"))
        })
        .collect()
}

/// A scope's field as the flag that set it (`scope.fs_roots` ->
/// `--fs-root`), so the CLI's error names what the person typed.
fn flag_error(e: recourse_gate::GateError) -> anyhow::Error {
    match &e {
        recourse_gate::GateError::Invalid { field, message } => {
            let flag = match field.as_str() {
                "scope.fs_roots" => "--fs-root",
                "scope.sql" => "--sql",
                "scope.http_allow" => "--http-allow",
                "scope" => "--fs-root/--sql/--http-allow",
                "name" => "--name",
                other => other,
            };
            anyhow::anyhow!("{flag}: {message}")
        }
        _ => anyhow::Error::new(e),
    }
}

/// Settings that would make the gate misbehave rather than fail: refused
/// before anything starts, naming the flag.
fn check_serve_args(args: &ServeArgs) -> anyhow::Result<()> {
    if args.window_margin_s < 0 {
        bail!(
            "--window-margin-s {}: must be 0 or more (seconds before a window closes)",
            args.window_margin_s
        );
    }
    if args.max_connections == 0 {
        bail!("--max-connections 0: must be 1 or more");
    }
    if args.header_timeout_s == 0 {
        bail!("--header-timeout-s 0: must be 1 or more (seconds to send a request's headers)");
    }
    if !(args.rate_limit.is_finite() && args.rate_limit > 0.0) {
        bail!(
            "--rate-limit {}: must be more than 0 (requests per second per token)",
            args.rate_limit
        );
    }
    if args.rate_burst == 0 {
        bail!("--rate-burst 0: must be 1 or more");
    }
    args.oidc.config()?;
    if args.claim_lease_s < 2 {
        bail!(
            "--claim-lease-s {}: must be 2 or more (a claim is renewed every third of its lease)",
            args.claim_lease_s
        );
    }
    if args.hold_ttl_s <= 0 {
        bail!(
            "--hold-ttl-s {}: must be more than 0 (seconds a held write waits; 0 would expire every held write at once)",
            args.hold_ttl_s
        );
    }
    Ok(())
}

/// Refuses a data directory, vault or store inside an `--fs-root`, or a
/// root inside them, in one sentence naming which is inside which.
fn check_placement(args: &ServeArgs) -> anyhow::Result<()> {
    use recourse_gate::placement::{self, Place};
    let resolve = |flag: &str, p: &Path| {
        placement::resolve(p).with_context(|| format!("{flag} {}", p.display()))
    };
    let data_dir = resolve("--data-dir", &args.data_dir)?;
    let vault = match &args.vault {
        Some(v) => resolve("--vault", v)?,
        None => data_dir.join("vault"),
    };
    // The embedded store is the SQLite file in the data directory (a shared
    // one is a database elsewhere); the audit signing key defaults to a file
    // there too.
    let mut places = vec![
        Place::new("the data directory", data_dir.clone()),
        Place::new("the vault", vault),
    ];
    if args.database_url.is_none() {
        places.push(Place::new("the store", data_dir));
    }
    if let Some(key) = &args.signing_key {
        places.push(Place::new(
            "the audit signing key",
            resolve("--signing-key", key)?,
        ));
    }
    if let Some(key) = &args.action_key {
        places.push(Place::new("the action key", resolve("--action-key", key)?));
    }
    let roots = args
        .fs_roots
        .iter()
        .map(|r| resolve("--fs-root", r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    placement::check(&places, &roots).map_err(anyhow::Error::msg)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Crash points for the reliability tests (`FAILPOINTS`); a no-op unless
    // built with the `failpoints` feature.
    recourse_connector::crash::setup_from_env();
    check_serve_args(&args)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or a journal
        // gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let store_timeout = std::time::Duration::from_millis(args.store_timeout_ms);
    // A URL that names no store is refused before anything is created.
    let shared = args
        .database_url
        .as_deref()
        .map(|url| {
            recourse_gate::store::open_url_with(url, store_timeout)
                .with_context(|| format!("--database-url {}", shown_url(url)))
        })
        .transpose()?;
    // Before anything is created: the gate's own state never lies inside
    // a root an agent may write, nor a root inside it.
    check_placement(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("--data-dir {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;
    // One gate per data directory (and so per embedded store, or per vault
    // on a shared one), held until the process ends.
    let _lock = recourse_gate::lock_data_dir(&data_dir).context("--data-dir")?;
    let vault = args.vault.clone().unwrap_or_else(|| data_dir.join("vault"));

    let action_key_path = args
        .action_key
        .clone()
        .unwrap_or_else(|| data_dir.join("action.key"));
    let (action_key, created) =
        recourse_gate::lifecycle::ActionKey::load_or_create(&action_key_path)
            .with_context(|| format!("--action-key {}", action_key_path.display()))?;
    if created {
        tracing::warn!(path = %action_key_path.display(), key_id = %action_key.key_id(),
            "created a new action key: back it up, and keep it off the store's disk");
    }
    let gate_id = match &args.gate_id {
        Some(id) => {
            recourse_gate::check_gate_id(id).map_err(anyhow::Error::msg)?;
            id.clone()
        }
        None => recourse_gate::gate_id_in(&data_dir).context("--data-dir: the gate id")?,
    };
    let mut config = GateConfig {
        gate_id,
        hold_ttl: chrono::Duration::seconds(args.hold_ttl_s),
        claim_lease: chrono::Duration::seconds(i64::from(args.claim_lease_s)),
        redact_keys: args.redact.clone(),
        quota_bytes: args.quota_bytes,
        action_key,
        ..GateConfig::default()
    };
    config.policy.window_margin_s = args.window_margin_s;
    for (bearer, n) in parse_pairs("--approvals", &args.approvals)? {
        let b: Bearer = serde_json::from_value(serde_json::Value::String(bearer.into()))
            .with_context(|| format!("--approvals: unknown bearer `{bearer}`"))?;
        let n: u32 = n
            .parse()
            .with_context(|| format!("--approvals {bearer}: `{n}` is not a count"))?;
        config.approvals.insert(b, n.max(1));
    }

    let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
    if !args.fs_roots.is_empty() {
        let fs = recourse_connector_fs::FsConnector::new(args.fs_roots.clone(), vault.join("fs"))
            .context("--fs-root / --vault")?;
        connectors.push(Arc::new(fs));
    }
    #[cfg(feature = "sql")]
    if !args.sql.is_empty() {
        let dbs = parse_pairs("--sql", &args.sql)?
            .into_iter()
            .map(|(n, u)| (n.to_string(), u.to_string()))
            .collect();
        let sql = recourse_connector_sql::SqlConnector::new(dbs, vault.join("sql"))
            .await
            .context("--sql")?;
        connectors.push(Arc::new(sql));
    }
    #[cfg(not(feature = "sql"))]
    if !args.sql.is_empty() {
        bail!("--sql: this build has no sql connector (built without the `sql` feature)");
    }
    #[cfg(feature = "http")]
    if !args.http_allow.is_empty() {
        let mut secrets: std::collections::HashMap<String, Vec<(String, String)>> =
            Default::default();
        for s in &args.http_secrets {
            let (host, header) = s
                .split_once('=')
                .context("--http-secret: expected HOST=NAME:VALUE")?;
            let (name, value) = header
                .split_once(':')
                .context("--http-secret: expected HOST=NAME:VALUE")?;
            secrets
                .entry(host.to_string())
                .or_default()
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        let http = recourse_connector_http::HttpConnector::new(
            args.http_allow.clone(),
            secrets,
            std::time::Duration::from_secs(30),
        )
        .context("--http-allow / --http-secret")?;
        connectors.push(Arc::new(http));
    }
    #[cfg(not(feature = "http"))]
    if !args.http_allow.is_empty() {
        bail!("--http-allow: this build has no http connector (built without the `http` feature)");
    }

    let store: Arc<dyn Store> = match shared {
        Some(pg) => {
            let url = shown_url(args.database_url.as_deref().unwrap_or_default());
            match pg.ready().await {
                Ok(()) => {}
                // Serve anyway: every request answers 503 until the
                // database is back, and the gate then carries on by itself.
                Err(e) if e.is_transient() => {
                    tracing::error!(error = %e, database = %url,
                        "the shared store is not reachable; answering 503 until it is");
                }
                Err(e) => return Err(e).with_context(|| format!("--database-url {url}")),
            }
            Arc::new(pg)
        }
        None => Arc::new(SqliteStore::open_with(&data_dir, store_timeout).await?),
    };
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let checkpoints = start_checkpoints(&args, &data_dir, store.clone(), fatal_tx).await?;
    let notify = notify_config(&args)?;
    let mut gate = Gate::new(store, connectors, config);
    if let Some(notify) = notify {
        gate = gate.with_notifications(notify).context("--webhook")?;
    }
    let gate = Arc::new(gate);
    if let Some(mode) = args.mode {
        set_mode_at_start(gate.clone(), mode).await;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts wait for this line.
    println!("recourse gate listening on http://{addr}");
    tracing::info!(%addr, connectors = ?gate.connector_names(), "gate ready");
    // Ctrl-C, or a trail found broken once a store that was unreachable at
    // start answers (what would have refused the start).
    let fatal = Arc::new(std::sync::Mutex::new(None));
    let shutdown = {
        let fatal = fatal.clone();
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                Ok(e) = fatal_rx => {
                    if let Ok(mut slot) = fatal.lock() {
                        *slot = Some(e);
                    }
                }
            }
        }
    };
    let limits = recourse_gate::limits::ServeLimits {
        max_connections: args.max_connections,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_s),
        rate_per_s: args.rate_limit,
        burst: args.rate_burst,
    };
    let oidc = match args.oidc.config()? {
        Some(config) => {
            tracing::info!(issuer = %config.issuer, "accepting ID tokens (OpenID Connect) beside bearer tokens");
            Some(Arc::new(recourse_gate::oidc::OidcVerifier::new(config)?))
        }
        None => None,
    };
    recourse_mcp::serve_gate_with_sign_in(listener, gate, limits, oidc, shutdown).await?;
    checkpoints.finish().await;
    if let Some(e) = fatal.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    Ok(())
}

/// `--mode`: written to the store before the gate serves. A shared store
/// that does not answer yet gets it as soon as it does (retried in the
/// background, the gate serving meanwhile under the store's mode).
async fn set_mode_at_start(gate: Arc<Gate>, mode: GateMode) {
    let set = move |applied: Option<recourse_client::ModeState>| match applied {
        Some(_) => tracing::warn!(
            mode = mode.as_str(),
            "--mode: the store's mode is set (audited as gate.mode)"
        ),
        None => tracing::info!(
            mode = mode.as_str(),
            "--mode: the store was in this mode already"
        ),
    };
    match gate.set_mode_at_start(mode).await {
        Ok(applied) => set(applied),
        Err(e) => {
            tracing::error!(error = %e, mode = mode.as_str(),
                "--mode: could not set the store's mode; retrying in the background");
            tokio::spawn(async move {
                let mut wait = std::time::Duration::from_millis(500);
                loop {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(30));
                    if let Ok(applied) = gate.set_mode_at_start(mode).await {
                        set(applied);
                        return;
                    }
                }
            });
        }
    }
}

/// The checkpoint writer of a running gate: a task that signs the trail's
/// head when one is due, and [`Checkpoints::finish`] for the last one.
struct Checkpoints {
    /// Empty while a shared store that was unreachable at start has not
    /// answered yet.
    writer: Arc<tokio::sync::OnceCell<Arc<recourse_gate::checkpoint::Checkpointer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpoints {
    async fn finish(self) {
        self.task.abort();
        let Some(writer) = self.writer.get() else {
            return;
        };
        match writer.checkpoint().await {
            Ok(Some(head)) => tracing::info!(seq = head.seq, "signed the audit head at shutdown"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "signing the audit head at shutdown"),
        }
    }
}

async fn start_checkpoints(
    args: &ServeArgs,
    data_dir: &Path,
    store: Arc<dyn Store>,
    fatal: tokio::sync::oneshot::Sender<anyhow::Error>,
) -> anyhow::Result<Checkpoints> {
    use recourse_gate::checkpoint::{CheckpointError, Checkpointer, Signer};
    if args.checkpoint_every < 1 || args.checkpoint_secs < 1 {
        bail!("--checkpoint-every and --checkpoint-secs: must be 1 or more");
    }
    let path = args
        .signing_key
        .clone()
        .unwrap_or_else(|| data_dir.join("signing.key"));
    let (signer, created) = Signer::load_or_create(&path)
        .with_context(|| format!("--signing-key {}", path.display()))?;
    if created {
        tracing::warn!(path = %path.display(), key_id = %signer.key_id(),
            "created a new audit signing key: back it up, and keep it off the store's disk");
    }
    let (every, secs) = (
        args.checkpoint_every,
        std::time::Duration::from_secs(args.checkpoint_secs),
    );
    let writer = Arc::new(tokio::sync::OnceCell::new());
    match Checkpointer::start(store.clone(), signer, every, secs).await {
        Ok(w) => {
            let _ = writer.set(Arc::new(w));
        }
        // A shared store down at start: the trail is checked (and the
        // writer started) once it answers.
        Err(CheckpointError::Store(e)) if e.is_transient() => {
            tracing::warn!(error = %e, "the audit trail is checked once the store answers");
        }
        Err(e) => return Err(e).context("the audit trail at start"),
    }
    let task = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut fatal = Some(fatal);
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let w = match writer.get() {
                    Some(w) => w.clone(),
                    None => {
                        let signer = match Signer::load_or_create(&path) {
                            Ok((s, _)) => s,
                            Err(e) => {
                                tracing::error!(error = %e, "reading the signing key");
                                continue;
                            }
                        };
                        match Checkpointer::start(store.clone(), signer, every, secs).await {
                            Ok(w) => {
                                let w = Arc::new(w);
                                let _ = writer.set(w.clone());
                                tracing::info!("the audit trail verified; signing its head");
                                w
                            }
                            Err(CheckpointError::Store(e)) if e.is_transient() => continue,
                            Err(e) => {
                                if let Some(f) = fatal.take() {
                                    let _ = f.send(
                                        anyhow::Error::new(e).context("the audit trail at start"),
                                    );
                                }
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = w.tick().await {
                    tracing::error!(error = %e, "signing the audit head");
                }
            }
        })
    };
    Ok(Checkpoints { writer, task })
}

/// Opens the store a command names. With `create`, a missing embedded
/// store is made (a token may be created before the first start); else it
/// must exist. A shared store is migrated when needed, and must answer.
async fn open_store(at: &StoreAt, create: bool) -> anyhow::Result<Arc<dyn Store>> {
    match (&at.database_url, &at.data_dir) {
        (Some(url), _) => {
            let shown = shown_url(url);
            let store = recourse_gate::store::open_url(url)
                .with_context(|| format!("--database-url {shown}"))?;
            store
                .ready()
                .await
                .with_context(|| format!("--database-url {shown}: the store does not answer"))?;
            Ok(Arc::new(store))
        }
        (None, Some(dir)) => {
            if create {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("--data-dir {}", dir.display()))?;
            } else if !dir.join("recourse.db").exists() {
                bail!("--data-dir {}: no gate store there", dir.display());
            }
            Ok(Arc::new(SqliteStore::open(dir).await?))
        }
        (None, None) => bail!("give --data-dir DIR or --database-url URL"),
    }
}

/// The store a command named, as its flag and value (for messages).
fn store_named(at: &StoreAt) -> String {
    match (&at.database_url, &at.data_dir) {
        (Some(url), _) => format!("--database-url {}", shown_url(url)),
        (None, Some(dir)) => format!("--data-dir {}", dir.display()),
        (None, None) => "the store".into(),
    }
}

async fn export_head(at: &StoreAt) -> anyhow::Result<ExitCode> {
    let store = open_store(at, false).await?;
    let entries = recourse_gate::checkpoint::read_trail(store.as_ref()).await?;
    let Some(head) = recourse_gate::checkpoint::latest_signed_head(&entries) else {
        bail!(
            "{}: the trail holds no signed checkpoint yet",
            store_named(at)
        );
    };
    println!("{}", serde_json::to_string_pretty(&head)?);
    Ok(ExitCode::SUCCESS)
}

async fn verify_anchor(at: &StoreAt, anchor: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(anchor)
        .with_context(|| format!("--anchor {}", anchor.display()))?;
    let head: recourse_gate::checkpoint::SignedHead = serde_json::from_str(&text)
        .with_context(|| format!("--anchor {}: not an exported head", anchor.display()))?;
    let store = open_store(at, false).await?;
    let entries = recourse_gate::checkpoint::read_trail(store.as_ref()).await?;
    let v = recourse_gate::checkpoint::verify_anchor(&entries, &head);
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(if v.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["recourse", "serve", "--data-dir", "/nonexistent"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => *a,
            _ => panic!("not serve"),
        }
    }

    #[test]
    fn serve_refuses_a_negative_margin_and_a_zero_hold_ttl_naming_the_flag() {
        assert!(check_serve_args(&serve_args(&[])).is_ok());
        assert!(check_serve_args(&serve_args(&["--window-margin-s", "0"])).is_ok());
        let e = check_serve_args(&serve_args(&["--window-margin-s", "-1"])).unwrap_err();
        assert!(e.to_string().starts_with("--window-margin-s -1:"), "{e}");
        let e = check_serve_args(&serve_args(&["--hold-ttl-s", "0"])).unwrap_err();
        assert!(e.to_string().starts_with("--hold-ttl-s 0:"), "{e}");
        assert!(!e.to_string().contains('\n'));
        assert!(check_serve_args(&serve_args(&["--hold-ttl-s", "-5"])).is_err());
        let e = check_serve_args(&serve_args(&["--claim-lease-s", "1"])).unwrap_err();
        assert!(e.to_string().starts_with("--claim-lease-s 1:"), "{e}");
        assert!(check_serve_args(&serve_args(&["--claim-lease-s", "2"])).is_ok());
    }

    #[test]
    fn a_half_oidc_configuration_is_refused_naming_the_flag() {
        let e = |extra: &[&str]| {
            check_serve_args(&serve_args(extra))
                .unwrap_err()
                .to_string()
        };
        assert!(e(&["--oidc-issuer", "https://id.example.org"]).contains("--oidc-audience"));
        let m = e(&[
            "--oidc-issuer",
            "https://id.example.org",
            "--oidc-audience",
            "rc",
        ]);
        assert!(m.contains("--oidc-role"), "{m}");
        assert!(e(&["--oidc-audience", "rc"]).contains("needs --oidc-issuer"));
        assert!(e(&["--oidc-role", "g=reviewer"]).contains("needs --oidc-issuer"));
        let full = [
            "--oidc-issuer",
            "https://id.example.org",
            "--oidc-audience",
            "rc",
        ];
        let m = e(&[&full[..], &["--oidc-role", "g=chief"]].concat());
        assert!(m.contains("`chief` is not a role"), "{m}");
        let m = e(&[
            "--oidc-issuer",
            "http://id.example.org",
            "--oidc-audience",
            "rc",
            "--oidc-role",
            "g=admin",
        ]);
        assert!(m.contains("https"), "{m}");
        let args = serve_args(
            &[
                &full[..],
                &[
                    "--oidc-role",
                    "staff=reviewer",
                    "--oidc-role",
                    "ops=incident_lead",
                    "--oidc-role-claim",
                    "roles",
                    "--oidc-name-claim",
                    "upn",
                ],
            ]
            .concat(),
        );
        let c = args.oidc.config().unwrap().unwrap();
        assert_eq!(c.roles.len(), 2);
        assert_eq!(c.roles[1].role, Role::IncidentLead);
        assert_eq!(c.role_claim, "roles");
        assert_eq!(c.name_claims, ["upn"]);
        assert!(serve_args(&[]).oidc.config().unwrap().is_none());
    }

    #[test]
    fn webhook_flags_are_checked_naming_the_flag_never_the_url() {
        assert!(notify_config(&serve_args(&[])).unwrap().is_none());
        let e = notify_config(&serve_args(&[
            "--webhook",
            "ftp://hooks.example/T0/SECRETPATH",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--webhook number 1:"), "{e}");
        assert!(!e.contains("SECRETPATH"), "{e}");
        let e = notify_config(&serve_args(&[
            "--webhook",
            "https://h.example/x",
            "--webhook-format",
            "xml",
        ]))
        .unwrap_err();
        assert!(e.to_string().starts_with("--webhook-format `xml`"), "{e}");
        let e = notify_config(&serve_args(&[
            "--webhook",
            "https://h.example/x",
            "--webhook-attempts",
            "0",
        ]))
        .unwrap_err();
        assert!(e.to_string().starts_with("--webhook-attempts 0"), "{e}");
        let e = notify_config(&serve_args(&["--webhook-secret-file", "/nonexistent"])).unwrap_err();
        assert!(e.to_string().contains("no --webhook"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "k\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let args = [
            "--webhook",
            "https://h.example/x",
            "--webhook-secret-file",
            secret.to_str().unwrap(),
        ];
        let e = notify_config(&serve_args(&args)).unwrap_err();
        assert!(format!("{e:#}").contains("readable by others"), "{e:#}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = notify_config(&serve_args(&args)).unwrap().unwrap();
        assert_eq!(config.secret.as_deref(), Some(&b"k"[..]));
        assert_eq!(config.webhooks.len(), 1);
        assert!(serve_args(&["--mode", "observe"]).mode == Some(GateMode::Observe));
        assert!(
            Cli::try_parse_from(["recourse", "serve", "--data-dir", "/d", "--mode", "loose"])
                .is_err()
        );
    }

    #[test]
    fn resolve_needs_exactly_one_verdict_and_a_reason() {
        let base = ["recourse", "writes", "resolve", "w1", "--token", "t"];
        let parse = |extra: &[&str]| {
            let mut argv = base.to_vec();
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv)
        };
        let Ok(Cli {
            command: Command::Writes(WritesCommand::Resolve { executed, .. }),
        }) = parse(&["--executed", "--reason", "checked"])
        else {
            panic!("--executed did not parse")
        };
        assert!(executed);
        let Ok(Cli {
            command: Command::Writes(WritesCommand::Resolve { executed, .. }),
        }) = parse(&["--not-executed", "--reason", "checked"])
        else {
            panic!("--not-executed did not parse")
        };
        assert!(!executed);
        assert!(parse(&["--reason", "checked"]).is_err());
        assert!(parse(&["--executed", "--not-executed", "--reason", "x"]).is_err());
        assert!(parse(&["--executed"]).is_err());
    }
}
