//! The catalog as a file a risk officer keeps under version control:
//! `recourse catalog export`, `plan`, `apply` and `test`. The file is the
//! contract's catalog (`{"resources": [...], "edges": [...]}`) as JSON, or
//! the same fields as TOML (`.toml`), always written in canonical order.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use recourse_client::{CatalogPlan, CatalogReplacement, GateClient, Redecided};
use recourse_core::catalog_diff::{self, CatalogDiff, FieldChange};
use recourse_core::{Catalog, CatalogCase, CatalogGraph, Reason, Verdict};

use super::{open_store, Remote, StoreAtOptional};

#[derive(Subcommand)]
pub(crate) enum FileCommand {
    /// Write the catalog as a file (sorted: resources by id, edges by
    /// their ends), from a gate or from its store directly.
    Export {
        #[command(flatten)]
        store: StoreAtOptional,
        /// Read it from this gate (needs a token that reads the catalog).
        #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
        gate: Option<String>,
        #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Write here (the format follows the extension: `.toml` or JSON)
        /// instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// `json` or `toml`; default: by the extension of --out, else json.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show what making the gate's catalog exactly FILE would change, and
    /// which held and recent writes it would decide differently. Stores
    /// nothing.
    Plan {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Recent writes (not held) to decide again, besides the held ones.
        #[arg(long)]
        recent: Option<u32>,
    },
    /// Make the gate's catalog exactly FILE: additions, changes and
    /// removals, as one audited change (`catalog.replaced`).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
        /// Refuse unless the catalog is still at this version (the one
        /// `plan` showed).
        #[arg(long)]
        expect_version: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Decide each CASE (a proposal with `expect`: `proceed` or `hold`)
    /// under the catalog FILE, offline; exit 1 listing each unexpected
    /// decision.
    Test {
        /// The catalog file under test.
        #[arg(long)]
        catalog: PathBuf,
        /// Case files: `{"proposal", "observations"?, "now"?,
        /// "window_margin_s"?, "expect", "expect_reasons"?}`.
        #[arg(required = true)]
        cases: Vec<PathBuf>,
    },
}

/// A catalog file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Toml,
}

impl Format {
    /// `.toml` is TOML; anything else JSON.
    pub(crate) fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Json,
        }
    }

    fn named(name: &str) -> anyhow::Result<Format> {
        match name {
            "json" => Ok(Format::Json),
            "toml" => Ok(Format::Toml),
            other => bail!("--format: `{other}` is neither `json` nor `toml`"),
        }
    }
}

/// Line and column (from 1) of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses a catalog file's text. The error names the field
/// (`resources[2].reach`) and, where the parser knows it, the line.
pub(crate) fn parse(text: &str, format: Format) -> Result<Catalog, String> {
    let named = |path: String, message: String| {
        if path.is_empty() || path == "." {
            message
        } else {
            format!("{path}: {message}")
        }
    };
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let c: Catalog = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                named(path, e.into_inner().to_string())
            })?;
            de.end().map_err(|e| e.to_string())?;
            Ok(c)
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, &e))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                named(path, toml_error(text, e.inner()))
            })
        }
    }
}

fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{message} at line {line} column {col}")
        }
        None => message.to_string(),
    }
}

/// `catalog` as a file: canonical order, JSON pretty-printed or TOML.
pub(crate) fn render(catalog: &Catalog, format: Format) -> anyhow::Result<String> {
    let c = catalog_diff::canonical(catalog.clone());
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(&c)? + "\n",
        Format::Toml => toml::to_string(&c).context("the catalog has no TOML form")?,
    })
}

/// Reads and checks a catalog file as a whole catalog (the checks a gate
/// makes before replacing its catalog); errors name the file and field.
pub(crate) fn read(path: &Path) -> anyhow::Result<Catalog> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let catalog =
        parse(&text, Format::of(path)).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    catalog_diff::check_document(&catalog).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}: {}",
            path.display(),
            e.field.trim_start_matches("catalog."),
            e.message
        )
    })?;
    Ok(catalog)
}

pub(crate) async fn run(cmd: FileCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FileCommand::Export {
            store,
            gate,
            token,
            out,
            format,
        } => {
            let catalog = match (store.given(), gate) {
                (Some(at), _) => open_store(&at, false).await?.catalog().await?.0,
                (None, Some(url)) => {
                    let token =
                        token.context("--token (or RECOURSE_TOKEN) is needed with --gate")?;
                    GateClient::new(url, token).catalog().await?
                }
                (None, None) => bail!("give --data-dir DIR, --database-url URL or --gate URL"),
            };
            let format = match (&format, &out) {
                (Some(f), _) => Format::named(f)?,
                (None, Some(path)) => Format::of(path),
                (None, None) => Format::Json,
            };
            let text = render(&catalog, format)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("--out {}", path.display()))?;
                    eprintln!(
                        "wrote {} resources and {} edges to {}",
                        catalog.resources.len(),
                        catalog.edges.len(),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        FileCommand::Plan {
            file,
            remote,
            json,
            recent,
        } => {
            let req = CatalogReplacement {
                catalog: read(&file)?,
                expect_version: None,
                recent,
                reason: None,
            };
            let plan = client(&remote).plan_catalog(&req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", show_plan(&plan, &file));
            }
            Ok(ExitCode::SUCCESS)
        }
        FileCommand::Apply {
            file,
            remote,
            expect_version,
            json,
        } => {
            let req = CatalogReplacement {
                catalog: read(&file)?,
                expect_version,
                recent: None,
                reason: None,
            };
            let done = client(&remote).replace_catalog(&req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            } else if done.diff.is_empty() {
                println!(
                    "no change: the catalog (version {}) is already {}",
                    done.version,
                    file.display()
                );
            } else {
                print!("{}", show_diff(&done.diff));
                println!(
                    "applied: {} (catalog version {} -> {})",
                    done.diff.summary(),
                    done.version_before,
                    done.version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FileCommand::Test { catalog, cases } => test(&catalog, &cases),
    }
}

fn client(r: &Remote) -> GateClient {
    GateClient::new(r.gate.clone(), r.token.clone())
}

/// `recourse catalog test`: 0 when every case decides as expected, 1
/// listing those that do not, 2 when a file is invalid.
fn test(catalog: &Path, cases: &[PathBuf]) -> anyhow::Result<ExitCode> {
    // The file as the gate would hold it after `apply`: a resource without
    // a `bearer` inherits its container's, as stored.
    let graph = CatalogGraph::new(read(catalog)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", catalog.display()))?;
    let clock = chrono::Utc::now();
    let mut failed = 0;
    for path in cases {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let case =
            CatalogCase::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        match case
            .run(&graph, clock)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        {
            None => println!("ok    {}", path.display()),
            Some(why) => {
                failed += 1;
                println!("FAIL  {}: {why}", path.display());
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} cases decided unexpectedly", cases.len());
        return Ok(ExitCode::from(1));
    }
    println!("all {} cases decided as expected", cases.len());
    Ok(ExitCode::SUCCESS)
}

fn value(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

fn fields(out: &mut String, fields: &[FieldChange]) {
    for f in fields {
        out.push_str(&format!(
            "      {}: {} -> {}\n",
            f.field,
            value(&f.before),
            value(&f.after)
        ));
    }
}

/// The diff, one line per change; removals loudest (they are what shrinks
/// the set of writes that wait for a person).
pub(crate) fn show_diff(d: &CatalogDiff) -> String {
    let mut out = String::new();
    let why = |w: &Option<String>| w.as_deref().map(|w| format!("  ({w})")).unwrap_or_default();
    if !d.resources_removed.is_empty() {
        out.push_str(&format!(
            "REMOVED resources ({}): writes reaching them no longer see them\n",
            d.resources_removed.len()
        ));
        for r in &d.resources_removed {
            let own = if r.bearer.is_none() {
                "  [no bearer of its own: discovered?]"
            } else {
                ""
            };
            out.push_str(&format!("  - {}{own}\n", r.id));
        }
    }
    if !d.edges_removed.is_empty() {
        out.push_str(&format!(
            "REMOVED edges ({}): what they reached leaves blast radii\n",
            d.edges_removed.len()
        ));
        for e in &d.edges_removed {
            out.push_str(&format!("  - {} -> {}{}\n", e.from, e.to, why(&e.why)));
        }
    }
    if !d.resources_added.is_empty() {
        out.push_str(&format!("Resources added ({})\n", d.resources_added.len()));
        for r in &d.resources_added {
            let bearer = r.bearer.map(|b| b.as_str()).unwrap_or("(inherited)");
            out.push_str(&format!(
                "  + {}  reach={} bearer={bearer}\n",
                r.id,
                r.reach.as_str()
            ));
        }
    }
    if !d.resources_changed.is_empty() {
        out.push_str(&format!(
            "Resources changed ({})\n",
            d.resources_changed.len()
        ));
        for c in &d.resources_changed {
            out.push_str(&format!("  ~ {}\n", c.id));
            fields(&mut out, &c.fields);
        }
    }
    if !d.edges_added.is_empty() {
        out.push_str(&format!("Edges added ({})\n", d.edges_added.len()));
        for e in &d.edges_added {
            out.push_str(&format!("  + {} -> {}{}\n", e.from, e.to, why(&e.why)));
        }
    }
    if !d.edges_changed.is_empty() {
        out.push_str(&format!("Edges changed ({})\n", d.edges_changed.len()));
        for c in &d.edges_changed {
            out.push_str(&format!("  ~ {} -> {}\n", c.from, c.to));
            fields(&mut out, &c.fields);
        }
    }
    out
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Proceed => "proceed",
        Verdict::Hold => "hold",
        Verdict::Refuse => "refuse",
    }
}

fn reason(sign: char, r: &Reason<'_>) -> String {
    format!("{sign} {} {}", r.code.as_str(), r.subject())
}

fn show_write(out: &mut String, w: &Redecided) {
    let mut reasons: Vec<String> = w.reasons_removed.iter().map(|r| reason('-', r)).collect();
    reasons.extend(w.reasons_added.iter().map(|r| reason('+', r)));
    let change = format!("{} -> {}", verdict(w.before), verdict(w.after));
    let mut lines = reasons.into_iter();
    out.push_str(&format!(
        "  {:<24} {:<10} {:<18} {}\n",
        w.id,
        w.status.as_str(),
        change,
        lines.next().unwrap_or_default()
    ));
    for l in lines {
        out.push_str(&format!("  {:<24} {:<10} {:<18} {l}\n", "", "", ""));
    }
}

/// A plan as a person reads it: the diff, then the writes decided
/// differently as a table.
pub(crate) fn show_plan(plan: &CatalogPlan, file: &Path) -> String {
    let mut out = format!(
        "{} against the gate's catalog (version {}): {}\n",
        file.display(),
        plan.version,
        plan.diff.summary()
    );
    out.push_str(&show_diff(&plan.diff));
    if plan.writes.is_empty() {
        out.push_str(&format!(
            "No write would be decided differently ({} held or recent examined).\n",
            plan.examined
        ));
    } else {
        out.push_str(&format!(
            "Writes decided differently ({} of {} held or recent examined)\n",
            plan.writes.len(),
            plan.examined
        ));
        out.push_str(&format!(
            "  {:<24} {:<10} {:<18} {}\n",
            "WRITE", "STATUS", "DECISION", "REASONS (- gone, + new)"
        ));
        for w in &plan.writes {
            show_write(&mut out, w);
        }
    }
    for s in &plan.skipped {
        out.push_str(&format!("not examined: {s}\n"));
    }
    if !plan.diff.is_empty() {
        out.push_str(&format!(
            "To apply exactly this: recourse catalog apply {} --expect-version {}\n",
            file.display(),
            plan.version
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
  "resources": [
    {"id": "licenses:1", "reach": "external", "bearer": "customer"},
    {"id": "account:1", "bearer": "customer", "labels": {"team": "trust", "env": "prod"}}
  ],
  "edges": [{"from": "account:1", "to": "licenses:1", "why": "revokes licences"}]
}"#;

    #[test]
    fn json_and_toml_read_the_same_catalog_and_write_it_sorted() {
        let from_json = parse(JSON, Format::Json).unwrap();
        let toml_text = render(&from_json, Format::Toml).unwrap();
        let from_toml = parse(&toml_text, Format::Toml).unwrap();
        assert_eq!(
            catalog_diff::canonical(from_json.clone()),
            from_toml,
            "{toml_text}"
        );
        // Sorted: account before licenses, whatever the file's order.
        let json_text = render(&from_json, Format::Json).unwrap();
        let a = json_text.find("account:1").unwrap();
        let l = json_text.find("\"licenses:1\"").unwrap();
        assert!(a < l, "{json_text}");
        // Writing what was read gives the same bytes (small diffs in git).
        assert_eq!(
            render(&parse(&json_text, Format::Json).unwrap(), Format::Json).unwrap(),
            json_text
        );
        assert_eq!(
            render(&from_toml, Format::Toml).unwrap(),
            toml_text,
            "{toml_text}"
        );
        assert!(toml_text.contains("[[resources]]"), "{toml_text}");
    }

    #[test]
    fn a_bad_file_names_the_field_and_the_line() {
        let err = parse(
            r#"{"resources": [{"id": "a:1"}, {"id": "a:2", "reach": "far"}]}"#,
            Format::Json,
        )
        .unwrap_err();
        assert!(
            err.starts_with("resources[1].reach: unknown variant `far`"),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
        let toml_text =
            "[[resources]]\nid = \"a:1\"\n\n[[resources]]\nid = \"a:2\"\nreahc = \"external\"\n";
        let err = parse(toml_text, Format::Toml).unwrap_err();
        assert!(err.starts_with("resources[1]"), "{err}");
        assert!(err.contains("unknown field `reahc`"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        let err = parse("[[resources]\nid = 1", Format::Toml).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = parse("[[edges]]\nfrom = \"a:1\"\n", Format::Toml).unwrap_err();
        assert!(err.contains("missing field `to`"), "{err}");
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("c/catalog.toml")), Format::Toml);
        assert_eq!(Format::of(Path::new("c/catalog.TOML")), Format::Toml);
        assert_eq!(Format::of(Path::new("catalog.json")), Format::Json);
        assert_eq!(Format::of(Path::new("catalog")), Format::Json);
    }

    #[test]
    fn a_file_with_a_duplicate_or_dangling_entry_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(
            &path,
            r#"{"resources": [{"id": "a:1"}], "edges": [{"from": "a:1", "to": "a:2"}]}"#,
        )
        .unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("c.json: edges[0].to: unknown resource `a:2`"),
            "{err}"
        );
    }

    #[test]
    fn a_plan_shows_removals_first_and_the_writes_as_a_table() {
        let before = parse(JSON, Format::Json).unwrap();
        let mut after = before.clone();
        after.edges.clear();
        let plan = CatalogPlan {
            version: 4,
            diff: catalog_diff::diff(&before, &after),
            examined: 3,
            writes: vec![],
            skipped: vec![],
        };
        let text = show_plan(&plan, Path::new("c.json"));
        assert!(text.contains("REMOVED edges (1)"), "{text}");
        assert!(
            text.contains("  - account:1 -> licenses:1  (revokes licences)"),
            "{text}"
        );
        assert!(text.contains("--expect-version 4"), "{text}");
        assert!(
            text.contains("No write would be decided differently (3"),
            "{text}"
        );
    }
}
