//! `roster knowledge add|list|search|remove`: company documents for agents.
//!
//! `add` mirrors a file or a directory into a source: new and changed files
//! are uploaded (one request each, so one bad file fails alone), unchanged
//! ones are skipped by their hash (so an interrupted `add` resumes where it
//! stopped), and documents whose file is gone from the directory are
//! removed: a directory added without `--prefix` mirrors the whole source,
//! one added with a prefix mirrors that prefix.

use super::api_client::{decode, Client};
use super::output::{one_line, print_json, table};
use super::Connection;
use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use roster_core::knowledge::{KnowledgeDocument, KnowledgeSource};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct KnowledgeArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: KnowledgeCommand,
}

#[derive(clap::Subcommand)]
enum KnowledgeCommand {
    /// Ingest a file or a directory (Markdown, text, HTML, PDF, CSV) into a source.
    Add {
        /// A file, or a directory read recursively (hidden entries skipped).
        path: PathBuf,
        /// The source's name; created if it does not exist.
        #[arg(long, short)]
        source: String,
        /// Put the documents under this path prefix inside the source. A
        /// directory added without a prefix mirrors the whole source
        /// (documents not in it are removed); give each directory its own
        /// prefix to build one source from several.
        #[arg(long)]
        prefix: Option<String>,
        /// Keep documents whose file is not in the directory.
        #[arg(long)]
        keep_missing: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List sources, or the documents of one source.
    List {
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Search sources for passages, with citations.
    Search {
        query: String,
        /// Source to search (repeatable); all when omitted.
        #[arg(long, short)]
        source: Vec<String>,
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a whole source, or one document of it.
    Remove {
        source: String,
        /// The document's path inside the source.
        document: Option<String>,
    },
}

#[derive(Deserialize)]
struct SourceList {
    data: Vec<KnowledgeSource>,
}

#[derive(Deserialize)]
struct DocumentPage {
    data: Vec<KnowledgeDocument>,
    next_after: Option<String>,
}

#[derive(Deserialize)]
struct Hit {
    citation: String,
    text: String,
    score: f32,
}

#[derive(Deserialize)]
struct Results {
    mode: String,
    notice: Option<String>,
    data: Vec<Hit>,
}

/// Uploads in flight at once.
const UPLOADS_AT_ONCE: usize = 4;

#[derive(Deserialize)]
struct Outcome {
    status: String,
}

pub async fn run(args: KnowledgeArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        KnowledgeCommand::Add {
            path,
            source,
            prefix,
            keep_missing,
            quiet,
        } => {
            add(
                &client,
                &path,
                &source,
                prefix.as_deref(),
                keep_missing,
                quiet,
            )
            .await
        }
        KnowledgeCommand::List { source: None, json } => {
            let value = client.get(&["v1", "knowledge", "sources"], &[]).await?;
            if json {
                return print_json(&value);
            }
            let list: SourceList = decode(value)?;
            let rows: Vec<Vec<String>> = list
                .data
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.documents.to_string(),
                        s.chunks.to_string(),
                        one_line(&s.description, 60),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["SOURCE", "DOCUMENTS", "CHUNKS", "DESCRIPTION"], &rows)
            );
            Ok(())
        }
        KnowledgeCommand::List {
            source: Some(source),
            json,
        } => {
            let docs = documents(&client, &source).await?;
            if json {
                return print_json(&serde_json::to_value(&docs)?);
            }
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| {
                    vec![
                        d.path.clone(),
                        d.kind.clone().unwrap_or_else(|| "-".into()),
                        d.version.to_string(),
                        d.chunks.to_string(),
                        d.bytes.to_string(),
                        d.error.as_ref().map_or_else(String::new, |e| {
                            one_line(&format!("{}: {}", e.code, e.message), 70)
                        }),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["PATH", "KIND", "V", "CHUNKS", "BYTES", "ERROR"], &rows)
            );
            Ok(())
        }
        KnowledgeCommand::Search {
            query,
            source,
            limit,
            json,
        } => {
            let mut body = json!({"query": query, "sources": source});
            if let Some(limit) = limit {
                body["limit"] = json!(limit);
            }
            let value = client.post(&["v1", "knowledge", "search"], &body).await?;
            if json {
                return print_json(&value);
            }
            let results: Results = decode(value)?;
            if let Some(notice) = &results.notice {
                eprintln!("note: {notice}");
            }
            for (i, hit) in results.data.iter().enumerate() {
                println!("[{}] {} (score {:.3})", i + 1, hit.citation, hit.score);
                for line in hit.text.trim().lines() {
                    println!("    {line}");
                }
                println!();
            }
            eprintln!(
                "{} passage(s), {} search",
                results.data.len(),
                results.mode.replace('_', "-")
            );
            Ok(())
        }
        KnowledgeCommand::Remove {
            source,
            document: None,
        } => {
            client
                .delete(&["v1", "knowledge", "sources", &source])
                .await?;
            println!("removed source {source}");
            Ok(())
        }
        KnowledgeCommand::Remove {
            source,
            document: Some(path),
        } => {
            let mut segments = vec!["v1", "knowledge", "sources", source.as_str(), "documents"];
            segments.extend(path.split('/'));
            client.delete(&segments).await?;
            println!("removed {source}:{path}");
            Ok(())
        }
    }
}

async fn documents(client: &Client, source: &str) -> Result<Vec<KnowledgeDocument>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1000".to_owned())];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let page: DocumentPage = decode(
            client
                .get(&["v1", "knowledge", "sources", source, "documents"], &query)
                .await?,
        )?;
        all.extend(page.data);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// Local files to ingest, keyed by their path inside the source.
fn local_files(root: &Path, prefix: Option<&str>) -> Result<BTreeMap<String, PathBuf>> {
    let meta =
        std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    let join = |key: String| match prefix {
        Some(p) => format!("{}/{key}", p.trim_matches('/')),
        None => key,
    };
    let mut files = BTreeMap::new();
    if meta.is_file() {
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{} has no usable file name", root.display()))?;
        files.insert(join(name.to_owned()), root.to_path_buf());
        return Ok(files);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                eprintln!("skipped {}: its name is not UTF-8", entry.path().display());
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                let relative = path
                    .strip_prefix(root)
                    .map_err(|_| anyhow!("{} is outside {}", path.display(), root.display()))?;
                let key: Vec<&str> = relative
                    .components()
                    .filter_map(|c| c.as_os_str().to_str())
                    .collect();
                files.insert(join(key.join("/")), path);
            }
        }
    }
    Ok(files)
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("md" | "markdown") => "text/markdown",
        Some("html" | "htm") => "text/html",
        Some("pdf") => "application/pdf",
        Some("csv") => "text/csv",
        Some("txt" | "text" | "log") => "text/plain",
        _ => "application/octet-stream",
    }
}

async fn add(
    client: &Client,
    root: &Path,
    source: &str,
    prefix: Option<&str>,
    keep_missing: bool,
    quiet: bool,
) -> Result<()> {
    let files = local_files(root, prefix)?;
    let single_file = root.is_file();
    // The source: created on first use.
    if let Err(e) = client
        .get(&["v1", "knowledge", "sources", source], &[])
        .await
    {
        if !e.to_string().starts_with("not_found") {
            return Err(e);
        }
        client
            .post(&["v1", "knowledge", "sources"], &json!({"name": source}))
            .await?;
    }
    let stored: BTreeMap<String, KnowledgeDocument> = documents(client, source)
        .await?
        .into_iter()
        .map(|d| (d.path.clone(), d))
        .collect();

    let total: u64 = files
        .values()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut added, mut unchanged, mut removed) = (0usize, 0usize, 0usize);
    let mut failed: Vec<String> = Vec::new();
    // Unchanged files are skipped by hash; the rest are uploaded a few at a
    // time (the server's index then takes several per commit: about twice
    // the throughput of one at a time under `roster bench --ingest-mb`).
    let mut uploads = Vec::new();
    for (key, path) in &files {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let local_hash = sha256_of(path)?;
        let known = stored.get(key);
        if known.is_some_and(|d| {
            d.version > 0
                && d.error.is_none()
                && d.content_hash.as_deref() == Some(local_hash.as_str())
        }) {
            unchanged += 1;
            bar.inc(size);
            continue;
        }
        uploads.push((key, path, size));
    }
    let mut results = futures::stream::iter(uploads.into_iter().map(|(key, path, size)| {
        let bar = &bar;
        async move {
            let mut segments = vec!["v1", "knowledge", "sources", source, "documents"];
            segments.extend(key.split('/'));
            bar.set_message(key.clone());
            let result = client.put_file(&segments, path, content_type(path)).await;
            bar.inc(size);
            (key, result)
        }
    }))
    .buffer_unordered(UPLOADS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    // Reported in path order, whatever order the uploads finished in.
    results.sort_by(|a, b| a.0.cmp(b.0));
    for (key, result) in results {
        match result.and_then(decode::<Outcome>) {
            Ok(outcome) if outcome.status == "unchanged" => unchanged += 1,
            Ok(_) => added += 1,
            Err(e) => {
                let line = format!("{key}: {e}");
                bar.suspend(|| eprintln!("error: {line}"));
                failed.push(line);
            }
        }
    }
    if !single_file && !keep_missing {
        let local: BTreeSet<&String> = files.keys().collect();
        let scope = prefix.map(|p| format!("{}/", p.trim_matches('/')));
        for path in stored.keys() {
            let in_scope = scope.as_deref().is_none_or(|s| path.starts_with(s));
            if in_scope && !local.contains(path) {
                let mut segments = vec!["v1", "knowledge", "sources", source, "documents"];
                segments.extend(path.split('/'));
                match client.delete(&segments).await {
                    Ok(()) => removed += 1,
                    Err(e) => failed.push(format!("{path}: cannot remove: {e}")),
                }
            }
        }
    }
    bar.finish_and_clear();
    println!(
        "{source}: {added} ingested, {unchanged} unchanged, {removed} removed, {} failed",
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("{} file(s) could not be ingested (see above)", failed.len())
    }
}
