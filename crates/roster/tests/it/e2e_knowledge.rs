//! Knowledge sources, long-term memory records and the search index, end to
//! end: the real `roster serve` with a config file, driven by the real
//! `roster knowledge|memory|index|chat` commands the way a new user would,
//! with a fake model server for chat and embeddings.

use crate::common;

use common::{Server, ADMIN_KEY};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Where a test that needs no model server points the `openai` provider.
const NO_MODEL: &str = "http://127.0.0.1:9/v1";
const EMBEDDER_ID: &str = "openai/text-embedding-3-small@64";

// ---------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------

struct Out {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "roster {} failed\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    fn failed(self) -> Out {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "roster {}: expected a failure\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// A failure told in exactly one stderr line `error: …`, nothing on stdout.
    fn one_error(self) -> Out {
        let out = self.failed();
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "roster {}: one stderr line, got:\n{}",
            out.args,
            out.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
        out
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("roster {}: not JSON ({e}):\n{}", self.args, self.stdout))
    }
}

/// The CLI pointed at one server with the admin key, as a user would set it
/// up with `ROSTER_URL` / `ROSTER_API_KEY`.
struct Cli {
    url: String,
    key: String,
    /// Working directory and `ROSTER_DATA_DIR` of the CLI: never the repo.
    home: PathBuf,
}

impl Cli {
    fn new(server: &Server, home: &Path) -> Cli {
        std::fs::create_dir_all(home).expect("cli home");
        Cli {
            url: server.url.clone(),
            key: ADMIN_KEY.to_owned(),
            home: home.to_path_buf(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
        command
            .args(args)
            .current_dir(&self.home)
            .env("ROSTER_URL", &self.url)
            .env("ROSTER_API_KEY", &self.key)
            .env("ROSTER_DATA_DIR", self.home.join("no-data-dir"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let mut child = self.command(args).spawn().expect("spawn roster");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).await.expect("stdin");
        drop(input);
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("roster {args:?} did not finish"))
            .expect("wait");
        Out {
            args: args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `roster knowledge list SOURCE --json`, by path.
    async fn documents(&self, source: &str) -> BTreeMap<String, Value> {
        let out = self
            .run(&["knowledge", "list", source, "--json"])
            .await
            .ok();
        out.json()
            .as_array()
            .expect("documents")
            .iter()
            .map(|d| (d["path"].as_str().expect("path").to_owned(), d.clone()))
            .collect()
    }

    /// `roster knowledge search QUERY --source SOURCE --json`.
    async fn search(&self, source: &str, query: &str) -> Value {
        self.run(&[
            "knowledge",
            "search",
            query,
            "--source",
            source,
            "--limit",
            "20",
            "--json",
        ])
        .await
        .ok()
        .json()
    }

    async fn index_status(&self) -> Value {
        self.run(&["index", "status"]).await.ok().json()
    }

    async fn memory_ids(&self) -> Vec<String> {
        let out = self.run(&["memory", "list", "--json"]).await.ok();
        out.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

fn write(root: &Path, relative: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A one-page PDF whose page draws `content` (a content stream), with a
/// correct cross-reference table.
fn pdf(content: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        tail.push_str(&format!("{offset:010} 00000 n \n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Plain filler, long enough that each handbook section is its own chunk.
fn filler(topic: &str) -> String {
    (1..=8)
        .map(|i| {
            format!(
                "Point {i} about {topic}: ask your manager when something in this section is unclear."
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn handbook_md() -> String {
    format!(
        "# Employee Handbook\n\nWelcome to Acme.\n\n{intro}\n\n## Leave\n\n### Parental leave\n\n\
         Parents get sixteen weeks of paid parental leave.\n{parental}\n\n### Sick leave\n\n\
         Tell your manager before ten when you are ill.\n{sick}\n\n## Expenses\n\n\
         Submit receipts within thirty days.\n{expenses}\n",
        intro = filler("the company"),
        parental = filler("parenthood"),
        sick = filler("illness"),
        expenses = filler("money"),
    )
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

/// The good documents of a company folder, by path.
fn good_documents() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("handbook.md", handbook_md().into_bytes()),
        (
            "policies/wifi.txt",
            b"The office wifi password is rotated every month.\nAsk the front desk for the current one.\n"
                .to_vec(),
        ),
        (
            "security.html",
            b"<html><head><title>Security</title></head><body><h1>Security policy</h1>\
              <p>Badges must be worn visibly at all times.</p></body></html>"
                .to_vec(),
        ),
        (
            "contacts.csv",
            b"name,team,phone\nAda Lovelace,Engineering,555-0100\nGrace Hopper,Compilers,555-0199\n"
                .to_vec(),
        ),
        (
            "travel.pdf",
            pdf("BT /F1 12 Tf 72 720 Td (The travel allowance is ninety euros per day.) Tj ET"),
        ),
        (
            "team notes #1 (100%).md",
            b"# Team notes\n\nThe kangaroo mascot lives in the lobby.\n".to_vec(),
        ),
    ]
}

/// A source's documents as `(path, version, error code)`.
fn summary(docs: &BTreeMap<String, Value>) -> Vec<(String, i64, Option<String>)> {
    docs.values()
        .map(|d| {
            (
                d["path"].as_str().expect("path").to_owned(),
                d["version"].as_i64().expect("version"),
                d["error"]["code"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn hits(results: &Value) -> &Vec<Value> {
    results["data"].as_array().expect("data")
}

fn hit_paths(results: &Value) -> Vec<String> {
    hits(results)
        .iter()
        .map(|h| h["path"].as_str().expect("path").to_owned())
        .collect()
}

/// `(start, end)` of `lines A-B` / `line A` in a citation.
fn cited_lines(citation: &str) -> (u64, u64) {
    let rest = citation
        .split_once("(lines ")
        .or_else(|| citation.split_once("(line "))
        .unwrap_or_else(|| panic!("no lines in {citation:?}"))
        .1;
    let span: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let (a, b) = span.split_once('-').unwrap_or((&span, &span));
    (a.parse().expect("line start"), b.parse().expect("line end"))
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("roster.toml");
    std::fs::write(&file, text).expect("config");
    file
}

fn embedder_config(model: &FakeModelServer) -> String {
    format!(
        "[embedder]\nkind = \"openai\"\nmodel = \"text-embedding-3-small\"\nbase_url = \"{}\"\n\
         api_key = \"sk\"\ndimensions = 64\n",
        model.openai_base_url()
    )
}

async fn start(data: &Path, model_url: &str, config: &Path) -> Server {
    Server::start(data, model_url, &[("ROSTER_CONFIG", path(config))]).await
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// 1. Ingesting a folder of company documents
// ---------------------------------------------------------------------------

/// The bad files of the folder and the reason code each must be refused with.
/// (The file over the size limit has tests of its own below.)
const BAD: &[(&str, &str)] = &[
    ("empty.md", "empty_document"),
    ("garbled.txt", "garbled_text"),
    ("logo.png", "unsupported_type"),
    ("nul.txt", "binary_content"),
    ("report.docx", "unsupported_type"),
    ("scan.pdf", "no_text"),
];

/// Plain text of about `bytes` bytes.
fn archive_text(bytes: usize) -> String {
    let line = "All work and no play makes a dull handbook entry, said the archivist.\n";
    line.repeat(bytes / line.len() + 1)
}

fn company_folder(root: &Path) {
    for (name, bytes) in good_documents() {
        write(root, name, bytes);
    }
    write(root, "empty.md", b"");
    write(root, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10");
    write(
        root,
        "report.docx",
        b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0[Content_Types].xml",
    );
    write(root, "nul.txt", b"abc\0\0\0\x01\x02\xff\xfe\0garbage\0");
    write(
        root,
        "garbled.txt",
        b"\x01\x02\x03\x04 hi \x05\x06\x07\x08 ho",
    );
    write(root, "scan.pdf", pdf("0 0 m 300 300 l S"));
    // 900 kB of text: large, but under the server's 1 MiB limit.
    write(root, "archive.txt", archive_text(900 * 1000));
    // Hidden entries are not documents.
    write(root, ".hidden.md", b"# Secret\n\nNot for the index.\n");
}

#[tokio::test]
async fn ingest_a_folder_of_company_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    company_folder(&docs);
    let config = config(dir.path(), "max_document_mb = 1\n");
    let server = start(&dir.path().join("data"), NO_MODEL, &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    let out = cli
        .run(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .await
        .failed();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 7 ingested, 0 unchanged, 0 removed, 6 failed",
        "{}",
        out.stderr
    );
    // One line per bad file naming it and its reason, then the verdict.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), BAD.len() + 1, "{}", out.stderr);
    for (name, code) in BAD {
        let prefix = format!("error: {name}: {code}: ");
        let matching: Vec<&&str> = lines.iter().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(matching.len(), 1, "{prefix:?} in:\n{}", out.stderr);
        assert!(
            matching[0][prefix.len()..].contains(name),
            "{}",
            matching[0]
        );
    }
    assert_eq!(
        lines.last().copied(),
        Some("error: 6 file(s) could not be ingested (see above)")
    );

    // Every good document is stored once, with its kind; every bad one
    // carries its reason.
    let listed = cli.documents("handbook").await;
    let kinds = [
        ("archive.txt", "text"),
        ("contacts.csv", "csv"),
        ("handbook.md", "markdown"),
        ("policies/wifi.txt", "text"),
        ("security.html", "html"),
        ("team notes #1 (100%).md", "markdown"),
        ("travel.pdf", "pdf"),
    ];
    for (name, kind) in kinds {
        let doc = listed.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(doc["kind"], kind, "{doc}");
        assert_eq!(doc["version"], 1, "{doc}");
        assert!(doc["chunks"].as_i64().expect("chunks") >= 1, "{doc}");
        assert!(doc.get("error").is_none(), "{doc}");
    }
    assert!(listed["handbook.md"]["chunks"].as_i64().expect("chunks") >= 3);
    assert!(listed["archive.txt"]["chunks"].as_i64().expect("chunks") > 100);
    for (name, code) in BAD {
        let doc = listed
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(doc["error"]["code"], *code, "{doc}");
        assert_eq!(doc["version"], 0, "{doc}");
        assert_eq!(doc["chunks"], 0, "{doc}");
    }
    assert!(!listed.contains_key(".hidden.md"));

    // The table a person reads: one row per document, the reason code in it.
    let table = cli
        .run(&["knowledge", "list", "handbook"])
        .await
        .ok()
        .stdout;
    for (name, code) in BAD {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(row.contains(&format!("{code}: {name}")), "{row}");
    }
    for (name, kind) in kinds {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        assert!(row.contains(kind), "{row}");
    }
    let sources = cli.run(&["knowledge", "list"]).await.ok().stdout;
    assert!(
        sources.lines().any(|l| l.starts_with("handbook ")),
        "{sources}"
    );

    // Search prints passages with citations a person can follow.
    let handbook = handbook_md();
    let out = cli
        .run(&[
            "knowledge",
            "search",
            "parental leave weeks",
            "--source",
            "handbook",
        ])
        .await
        .ok();
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("[1] handbook:handbook.md (lines "),
        "{}",
        out.stdout
    );
    assert!(first.contains("Parental leave"), "{first}");
    let (from, to) = cited_lines(first);
    let line = line_of(&handbook, "sixteen weeks");
    assert!(
        from <= line && line <= to,
        "{first} should cover line {line}"
    );
    assert!(
        out.stdout
            .contains("    Parents get sixteen weeks of paid parental leave."),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("full-text search"), "{}", out.stderr);

    for (query, citation, text) in [
        (
            "travel allowance",
            "[1] handbook:travel.pdf (page 1)",
            "The travel allowance is ninety euros per day.",
        ),
        (
            "Grace Hopper phone",
            "[1] handbook:contacts.csv (row",
            "name: Grace Hopper; team: Compilers; phone: 555-0199",
        ),
        (
            "wifi password",
            "[1] handbook:policies/wifi.txt (lines 1-2)",
            "The office wifi password is rotated every month.",
        ),
        (
            "badges",
            "[1] handbook:security.html (line",
            "Badges must be worn visibly at all times.",
        ),
        (
            "kangaroo mascot",
            "[1] handbook:team notes #1 (100%).md (line",
            "The kangaroo mascot lives in the lobby.",
        ),
    ] {
        let out = cli
            .run(&["knowledge", "search", query, "--source", "handbook"])
            .await
            .ok();
        assert!(out.stdout.starts_with(citation), "{query}: {}", out.stdout);
        assert!(out.stdout.contains(text), "{query}: {}", out.stdout);
    }
    // The CSV passage says which rows it holds.
    let results = cli.search("handbook", "Grace Hopper").await;
    let location = &hits(&results)[0]["location"];
    assert!(
        location["row_start"].as_u64() <= Some(2) && location["row_end"].as_u64() >= Some(2),
        "{location}"
    );
    // Nothing of the refused files or the hidden one is searchable.
    for query in ["garbage", "Secret"] {
        let results = cli.search("handbook", query).await;
        assert!(hits(&results).is_empty(), "{query}: {results}");
    }

    // The same add again: the good files are unchanged, the bad ones are
    // refused again, nothing is duplicated.
    let out = cli
        .run(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .await
        .failed();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 7 unchanged, 0 removed, 6 failed"
    );
    assert_eq!(summary(&cli.documents("handbook").await), summary(&listed));
    let status = cli.index_status().await;
    assert_eq!(status["applied"], status["head"], "{status}");
    let chunks: i64 = listed
        .values()
        .map(|d| d["chunks"].as_i64().expect("n"))
        .sum();
    assert_eq!(status["documents"], chunks, "{status}");

    // A path with spaces, `#`, `%` and parentheses survives the round trip.
    let out = cli
        .run(&["knowledge", "remove", "handbook", "team notes #1 (100%).md"])
        .await
        .ok();
    assert_eq!(
        out.stdout.trim(),
        "removed handbook:team notes #1 (100%).md"
    );
    assert!(!cli
        .documents("handbook")
        .await
        .contains_key("team notes #1 (100%).md"));
    assert!(hits(&cli.search("handbook", "kangaroo").await).is_empty());

    // Mistakes: one line on stderr each, nothing changed.
    let missing = dir.path().join("no-such-folder");
    for (args, expect) in [
        (
            vec!["knowledge", "add", path(&missing), "--source", "handbook"],
            "cannot read",
        ),
        (
            vec!["knowledge", "add", path(&docs), "--source", "bad name"],
            "invalid_request",
        ),
        (vec!["knowledge", "list", "nope"], "not_found"),
        (
            vec!["knowledge", "search", "leave", "--source", "nope"],
            "not_found",
        ),
        (
            vec!["knowledge", "remove", "handbook", "missing.md"],
            "not_found",
        ),
        (vec!["knowledge", "remove", "nope"], "not_found"),
    ] {
        let out = cli.run(&args).await.one_error();
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
    }
    let sources = cli.run(&["knowledge", "list", "--json"]).await.ok().json();
    assert_eq!(
        sources["data"].as_array().expect("data").len(),
        1,
        "{sources}"
    );
    assert_eq!(cli.documents("handbook").await.len(), listed.len() - 1);
}

/// A folder with one file over the server's 1 MiB limit (2 MB of text).
async fn too_large_setup(dir: &Path) -> (Server, Cli, PathBuf) {
    let docs = dir.join("company");
    write(&docs, "big.txt", archive_text(2 * 1024 * 1024));
    write(&docs, "small.txt", "A small and readable note.\n");
    let config = config(dir, "max_document_mb = 1\n");
    let server = start(&dir.join("data"), NO_MODEL, &config).await;
    let cli = Cli::new(&server, &dir.join("cli"));
    (server, cli, docs)
}

/// Each `add` of a file over `max_document_mb` must say why it was refused,
/// every time. (It once said `Broken pipe` about one time in ten: the
/// server answered before reading the body, and the CLI, still writing,
/// reported the write error instead of the answer.)
#[tokio::test]
async fn a_too_large_document_is_refused_with_its_reason_every_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, cli, docs) = too_large_setup(dir.path()).await;
    let big = docs.join("big.txt");
    let mut wrong = Vec::new();
    for _ in 0..30 {
        let out = cli
            .run(&[
                "knowledge",
                "add",
                path(&big),
                "--source",
                "handbook",
                "--quiet",
            ])
            .await
            .failed();
        let first = out.stderr.lines().next().unwrap_or_default().to_owned();
        if !first.starts_with("error: big.txt: document_too_large: ") {
            wrong.push(first);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 30 attempts: {wrong:#?}",
        wrong.len()
    );
}

/// The brief: `knowledge list` shows every document of the folder, with the
/// reason for the refused ones, the file over `max_document_mb` included.
#[tokio::test]
async fn a_too_large_document_is_listed_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, cli, docs) = too_large_setup(dir.path()).await;
    let out = cli
        .run(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .await
        .failed();
    assert!(
        out.stdout.contains("1 ingested") && out.stdout.contains("1 failed"),
        "{}",
        out.stdout
    );
    let listed = cli.documents("handbook").await;
    assert_eq!(listed["small.txt"]["version"], 1);
    let big = listed.get("big.txt").expect("big.txt is listed");
    assert_eq!(big["error"]["code"], "document_too_large", "{big}");
    assert_eq!(big["version"], 0, "{big}");
}

// ---------------------------------------------------------------------------
// 2. Re-running `add`: resume, changes, deletions, --keep-missing, --prefix
// ---------------------------------------------------------------------------

#[tokio::test]
async fn re_running_add_syncs_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    write(
        &docs,
        "a.md",
        "# Leave\n\nParents get sixteen weeks of leave.\n",
    );
    write(&docs, "b.txt", "Zebras graze near the car park at dawn.\n");
    write(
        &docs,
        "c.csv",
        "city,office\nLisbon,Alfama\nOslo,Grunerlokka\n",
    );
    write(
        &docs,
        "sub/d.html",
        "<html><body><h1>Canteen</h1><p>Lunch is served from noon.</p></body></html>",
    );
    let config = config(dir.path(), "");
    let server = start(&dir.path().join("data"), NO_MODEL, &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));
    let add = [
        "knowledge",
        "add",
        path(&docs),
        "--source",
        "handbook",
        "--quiet",
    ];

    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 4 ingested, 0 unchanged, 0 removed, 0 failed"
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let first = cli.documents("handbook").await;
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["a.md", "b.txt", "c.csv", "sub/d.html"]
    );

    // The same add again changes nothing.
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 4 unchanged, 0 removed, 0 failed"
    );
    assert_eq!(cli.documents("handbook").await, first);

    // An add interrupted before b.txt: only b.txt is sent again.
    let out = cli
        .run(&["knowledge", "remove", "handbook", "b.txt"])
        .await
        .ok();
    assert_eq!(out.stdout.trim(), "removed handbook:b.txt");
    assert!(!cli.documents("handbook").await.contains_key("b.txt"));
    assert!(hits(&cli.search("handbook", "zebras").await).is_empty());
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 1 ingested, 3 unchanged, 0 removed, 0 failed"
    );
    let resumed = cli.documents("handbook").await;
    for name in ["a.md", "c.csv", "sub/d.html"] {
        assert_eq!(resumed[name], first[name], "{name} was not touched");
    }
    assert_eq!(resumed["b.txt"]["version"], 1);
    assert_eq!(
        hit_paths(&cli.search("handbook", "zebras").await),
        ["b.txt"]
    );

    // A modified file: only it is re-ingested; the new text is found, the
    // old one is gone.
    write(
        &docs,
        "a.md",
        "# Leave\n\nParents get twenty weeks of leave.\n",
    );
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 1 ingested, 3 unchanged, 0 removed, 0 failed"
    );
    let modified = cli.documents("handbook").await;
    assert_eq!(modified["a.md"]["version"], 2);
    for name in ["b.txt", "c.csv", "sub/d.html"] {
        assert_eq!(modified[name], resumed[name], "{name} was not touched");
    }
    assert_eq!(hit_paths(&cli.search("handbook", "twenty").await), ["a.md"]);
    assert!(hits(&cli.search("handbook", "sixteen").await).is_empty());

    // A file that turns bad keeps its last good version searchable, and the
    // error goes away once the file is fixed.
    write(&docs, "b.txt", b"Zeb\0ras");
    let out = cli.run(&add).await.failed();
    assert!(
        out.stderr.starts_with("error: b.txt: binary_content: "),
        "{}",
        out.stderr
    );
    let broken = cli.documents("handbook").await;
    assert_eq!(broken["b.txt"]["version"], 1);
    assert_eq!(broken["b.txt"]["error"]["code"], "binary_content");
    assert_eq!(
        hit_paths(&cli.search("handbook", "zebras").await),
        ["b.txt"]
    );
    write(&docs, "b.txt", "Zebras graze near the car park at dawn.\n");
    cli.run(&add).await.ok();
    let fixed = cli.documents("handbook").await;
    assert_eq!(fixed["b.txt"]["version"], 1);
    assert!(fixed["b.txt"].get("error").is_none(), "{}", fixed["b.txt"]);

    // A file deleted locally: its document and its passages go.
    std::fs::remove_file(docs.join("c.csv")).expect("rm");
    assert_eq!(
        hit_paths(&cli.search("handbook", "Lisbon").await),
        ["c.csv"]
    );
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 3 unchanged, 1 removed, 0 failed"
    );
    assert!(!cli.documents("handbook").await.contains_key("c.csv"));
    assert!(hits(&cli.search("handbook", "Lisbon").await).is_empty());

    // --keep-missing keeps a document whose file is gone, searchable.
    std::fs::remove_file(docs.join("sub/d.html")).expect("rm");
    let mut keep = add.to_vec();
    keep.push("--keep-missing");
    let out = cli.run(&keep).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 2 unchanged, 0 removed, 0 failed"
    );
    assert!(cli.documents("handbook").await.contains_key("sub/d.html"));
    assert_eq!(
        hit_paths(&cli.search("handbook", "canteen lunch").await),
        ["sub/d.html"]
    );
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 2 unchanged, 1 removed, 0 failed"
    );
    assert!(hits(&cli.search("handbook", "canteen").await).is_empty());

    // A long document that shrinks to one passage leaves none of its old
    // passages behind in the index.
    write(&docs, "e.md", handbook_md());
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 1 ingested, 2 unchanged, 0 removed, 0 failed"
    );
    let long = cli.documents("handbook").await["e.md"]["chunks"]
        .as_i64()
        .expect("chunks");
    assert!(long >= 3, "{long}");
    assert_eq!(
        hit_paths(&cli.search("handbook", "illness").await),
        ["e.md"]
    );
    write(
        &docs,
        "e.md",
        "# Short\n\nThe handbook moved to the wiki.\n",
    );
    cli.run(&add).await.ok();
    let listed = cli.documents("handbook").await;
    assert_eq!(listed["e.md"]["version"], 2);
    assert_eq!(listed["e.md"]["chunks"], 1);
    assert!(hits(&cli.search("handbook", "illness").await).is_empty());
    let status = cli.index_status().await;
    let chunks: i64 = listed
        .values()
        .map(|d| d["chunks"].as_i64().expect("n"))
        .sum();
    assert_eq!(status["documents"], chunks, "{status}");
    std::fs::remove_file(docs.join("e.md")).expect("rm");
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 2 unchanged, 1 removed, 0 failed"
    );
    assert_eq!(cli.index_status().await["documents"], chunks - 1);

    // --prefix: a second folder under `ops/`; its sync touches only `ops/`.
    let ops = dir.path().join("ops");
    write(&ops, "parking.txt", "Parking is free on weekends.\n");
    write(
        &ops,
        "keys/locker.md",
        "# Lockers\n\nLocker keys are at reception.\n",
    );
    let add_ops = [
        "knowledge",
        "add",
        path(&ops),
        "--source",
        "handbook",
        "--prefix",
        "ops",
        "--quiet",
    ];
    let out = cli.run(&add_ops).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 2 ingested, 0 unchanged, 0 removed, 0 failed"
    );
    assert_eq!(
        cli.documents("handbook").await.keys().collect::<Vec<_>>(),
        ["a.md", "b.txt", "ops/keys/locker.md", "ops/parking.txt"]
    );
    assert_eq!(
        hit_paths(&cli.search("handbook", "weekends").await),
        ["ops/parking.txt"]
    );
    std::fs::remove_file(ops.join("parking.txt")).expect("rm");
    let out = cli.run(&add_ops).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 0 ingested, 1 unchanged, 1 removed, 0 failed"
    );
    assert_eq!(
        cli.documents("handbook").await.keys().collect::<Vec<_>>(),
        ["a.md", "b.txt", "ops/keys/locker.md"]
    );
    assert!(hits(&cli.search("handbook", "weekends").await).is_empty());
    assert_eq!(
        hit_paths(&cli.search("handbook", "locker keys").await),
        ["ops/keys/locker.md"]
    );

    // Removing the whole source removes its passages; searching it is an error.
    let out = cli.run(&["knowledge", "remove", "handbook"]).await.ok();
    assert_eq!(out.stdout.trim(), "removed source handbook");
    cli.run(&["knowledge", "search", "zebras", "--source", "handbook"])
        .await
        .one_error();
    let status = cli.index_status().await;
    assert_eq!(status["documents"], 0, "{status}");
    assert_eq!(status["applied"], status["head"], "{status}");
}

// ---------------------------------------------------------------------------
// 3. An agent answers from the documents, with a citation
// ---------------------------------------------------------------------------

fn content_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn an_agent_answers_from_the_documents_with_a_citation() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    let handbook = handbook_md();
    write(&docs, "handbook.md", &handbook);
    write(
        &docs,
        "policies/wifi.txt",
        "The office wifi password is rotated every month.\n",
    );
    let config = config(dir.path(), "");
    let server = start(&dir.path().join("data"), &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));
    cli.run(&[
        "knowledge",
        "add",
        path(&docs),
        "--source",
        "handbook",
        "--quiet",
    ])
    .await
    .ok();

    // `roster agent create` has no flag for knowledge sources: HTTP.
    let (status, body) = server
        .client()
        .post(
            "/v1/agents",
            json!({"name": "helpdesk", "model": "openai/gpt-4.1-mini",
                   "instructions": "Answer from the company documents and cite them.",
                   "knowledge": ["handbook"], "tools": ["knowledge_search"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    model.push(Reply::tool_call(
        "call_1",
        "knowledge_search",
        r#"{"query":"parental leave weeks","source":"handbook"}"#,
    ));
    model.push(Reply::text(
        "Parents get sixteen weeks of paid parental leave (handbook:handbook.md).",
    ));
    let out = cli
        .run_with_stdin(
            &["chat", "helpdesk"],
            "How many weeks of parental leave do parents get?\n",
        )
        .await
        .ok();
    assert!(
        out.stdout.contains("Parents get sixteen weeks"),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(model.request_count(), 2);
    let requests = model.requests();
    let line = line_of(&handbook, "sixteen weeks");

    // The first call: the passage was recalled into the system prompt, with
    // its citation, and the tool was offered.
    let first = &requests[0].body;
    let system = content_text(&first["messages"][0]);
    assert_eq!(first["messages"][0]["role"], "system", "{first}");
    let knowledge = system
        .split_once("<knowledge>")
        .and_then(|(_, rest)| rest.split_once("</knowledge>"))
        .map(|(inside, _)| inside)
        .unwrap_or_else(|| panic!("no <knowledge> section in:\n{system}"));
    let cited = knowledge
        .lines()
        .find(|l| l.starts_with("[1] handbook:handbook.md (lines "))
        .unwrap_or_else(|| panic!("no handbook citation in:\n{knowledge}"));
    let (from, to) = cited_lines(cited);
    assert!(
        from <= line && line <= to,
        "{cited} should cover line {line}"
    );
    assert!(
        knowledge.contains("Parents get sixteen weeks of paid parental leave."),
        "{knowledge}"
    );
    assert!(!knowledge.contains("wifi"), "{knowledge}");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["knowledge_search"]);

    // The second call carries the tool's result: passages with citations.
    let second = &requests[1].body;
    let messages = second["messages"].as_array().expect("messages");
    let result = messages.last().expect("a message");
    assert_eq!(result["role"], "tool", "{second}");
    assert_eq!(result["tool_call_id"], "call_1", "{second}");
    let output = content_text(result);
    assert!(
        output.starts_with("[1] handbook:handbook.md (lines "),
        "{output}"
    );
    let (from, to) = cited_lines(output.lines().next().unwrap_or_default());
    assert!(from <= line && line <= to, "{output}");
    assert!(
        output.contains("Parents get sixteen weeks of paid parental leave."),
        "{output}"
    );

    // The session keeps the cited tool result.
    let (_, sessions) = server.client().get("/v1/sessions").await;
    let sid = sessions["data"][0]["id"]
        .as_str()
        .expect("session")
        .to_owned();
    let (_, items) = server
        .client()
        .get(&format!("/v1/sessions/{sid}/items"))
        .await;
    let stored = items["data"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool result in {items}"));
    assert!(
        stored.to_string().contains("handbook:handbook.md (lines "),
        "{stored}"
    );
}

// ---------------------------------------------------------------------------
// 4. The memory CLI
// ---------------------------------------------------------------------------

#[tokio::test]
async fn memory_records_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), "");
    let server = start(&dir.path().join("data"), NO_MODEL, &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    let out = cli
        .run(&[
            "memory",
            "add",
            "Ada prefers tea",
            "--namespace",
            "users/ada",
        ])
        .await
        .ok();
    let (id, version) = out
        .stdout
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(id.starts_with("mem_"), "{}", out.stdout);
    assert_eq!(version, "(version 1)");
    let id = id.to_owned();
    cli.run(&[
        "memory",
        "add",
        "Bob takes the night train",
        "--namespace",
        "users/bob",
        "--kind",
        "note",
        "--metadata",
        r#"{"origin":"onboarding"}"#,
    ])
    .await
    .ok();

    let out = cli.run(&["memory", "list"]).await.ok();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], [id.as_str(), "users/ada", "fact", "1"], "{row}");
    assert!(row.ends_with("Ada prefers tea"), "{row}");
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    let ada = cli
        .run(&["memory", "list", "--namespace", "users/ada", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(ada["data"].as_array().expect("data").len(), 1, "{ada}");

    let out = cli
        .run(&["memory", "search", "tea", "-n", "users/ada"])
        .await
        .ok();
    assert!(out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .starts_with(&id));
    assert!(out.stderr.contains("1 result(s)"), "{}", out.stderr);
    let out = cli
        .run(&["memory", "search", "tea", "-n", "users/bob"])
        .await
        .ok();
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "only the header: {}",
        out.stdout
    );

    let out = cli.run(&["memory", "show", &id]).await.ok();
    assert!(
        out.stdout.starts_with(&format!("memory    {id}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("namespace users/ada\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("version   1\n"), "{}", out.stdout);
    let history: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("V  CHANGE"))
        .skip(1)
        .collect();
    assert_eq!(history.len(), 1, "{}", out.stdout);
    assert!(history[0].starts_with("1  create"), "{}", out.stdout);

    let out = cli
        .run(&["memory", "edit", &id, "--content", "Ada prefers green tea"])
        .await
        .ok();
    assert_eq!(out.stdout.trim(), format!("{id} (version 2)"));
    let out = cli.run(&["memory", "show", &id]).await.ok();
    assert!(out.stdout.contains("version   2\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("content   Ada prefers green tea\n"),
        "{}",
        out.stdout
    );
    let history: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("V  CHANGE"))
        .skip(1)
        .collect();
    assert_eq!(history.len(), 2, "{}", out.stdout);
    assert!(
        history[0].starts_with("1  create") && history[0].ends_with("Ada prefers tea"),
        "{}",
        out.stdout
    );
    assert!(
        history[1].starts_with("2  update") && history[1].ends_with("Ada prefers green tea"),
        "{}",
        out.stdout
    );
    let detail = cli
        .run(&["memory", "show", &id, "--json"])
        .await
        .ok()
        .json();
    let versions: Vec<i64> = detail["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|v| v["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, [1, 2]);
    let found = cli
        .run(&["memory", "search", "green", "-n", "users/ada", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(found["data"][0]["record"]["id"], id.as_str(), "{found}");
    assert_eq!(found["data"][0]["record"]["version"], 2, "{found}");

    // Bad input: one line on stderr, non-zero exit, nothing changed.
    let before = cli.run(&["memory", "list", "--json"]).await.ok().json();
    let status_before = cli.index_status().await;
    let unknown = "mem_01a2370e55ad714098ae0b4360a11a6c";
    let add = |extra: &[&'static str]| [&["memory", "add"][..], extra].concat();
    for (args, expect) in [
        (
            add(&["x", "-n", "users/ada", "--metadata", "[1]"]),
            "--metadata must be a JSON object",
        ),
        (
            add(&["x", "-n", "users/ada", "--metadata", "{nope"]),
            "--metadata is not valid JSON",
        ),
        (add(&["x", "-n", "a//b"]), "invalid_request: namespace"),
        (add(&["", "-n", "users/ada"]), "content: must not be empty"),
        (
            add(&["x", "-n", "users/ada", "--expires-at", "tomorrow"]),
            "expires_at",
        ),
        (
            add(&["x", "-n", "users/ada", "--kind", "gossip"]),
            "invalid_request",
        ),
        (vec!["memory", "show", unknown], "not_found"),
        (vec!["memory", "show", "not-an-id"], "not_found"),
        (
            vec!["memory", "edit", unknown, "--content", "y"],
            "not_found",
        ),
        (vec!["memory", "edit", &id], "nothing to change"),
        (vec!["memory", "delete", unknown], "not_found"),
        (
            vec!["memory", "search", "tea", "-n", "a//b"],
            "invalid_request",
        ),
        (
            vec!["memory", "list", "--namespace", "a//b"],
            "invalid_request",
        ),
    ] {
        let out = cli.run(&args).await.one_error();
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        cli.run(&["memory", "list", "--json"]).await.ok().json(),
        before
    );
    let status = cli.index_status().await;
    assert_eq!(status["head"], status_before["head"], "{status}");

    let out = cli.run(&["memory", "delete", &id]).await.ok();
    assert_eq!(out.stdout.trim(), format!("deleted {id}"));
    assert!(!cli.memory_ids().await.contains(&id));
    let found = cli
        .run(&["memory", "search", "tea", "-n", "users/ada", "--json"])
        .await
        .ok()
        .json();
    assert!(hits(&found).is_empty(), "{found}");
    cli.run(&["memory", "show", &id]).await.one_error();
    cli.run(&["memory", "delete", &id]).await.one_error();
    assert_eq!(cli.memory_ids().await.len(), 1);
}

// ---------------------------------------------------------------------------
// 5. Crashes during ingestion, and a lost index
// ---------------------------------------------------------------------------

/// Small documents, each with a word no other one has.
fn crash_folder(root: &Path) -> Vec<(&'static str, &'static str)> {
    let docs = [
        (
            "a.md",
            "alpaca",
            "# Alpacas\n\nThe alpaca policy covers farm visits.\n",
        ),
        (
            "b.txt",
            "bison",
            "Bison sightings go to the wildlife desk.\n",
        ),
        (
            "c.html",
            "cormorant",
            "<html><body><p>The cormorant logo is trademarked.</p></body></html>",
        ),
        ("d.csv", "dromedary", "animal,desk\ndromedary,travel\n"),
    ];
    for (name, _, text) in docs {
        write(root, name, text);
    }
    docs.iter().map(|(name, word, _)| (*name, *word)).collect()
}

/// Every document is stored once, the index has applied the whole log and
/// holds exactly the store's chunks (with vectors), and each document's
/// passage is found by its word.
async fn assert_consistent(cli: &Cli, words: &[(&str, &str)]) {
    let docs = cli.documents("handbook").await;
    assert_eq!(
        docs.keys().map(String::as_str).collect::<Vec<_>>(),
        words.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    for doc in docs.values() {
        assert_eq!(doc["version"], 1, "{doc}");
        assert!(doc.get("error").is_none(), "{doc}");
    }
    let chunks: i64 = docs
        .values()
        .map(|d| d["chunks"].as_i64().expect("n"))
        .sum();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = cli.index_status().await;
        if status["applied"] == status["head"] && status["vectors"] == chunks {
            break status;
        }
        assert!(Instant::now() < deadline, "index never caught up: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["documents"], chunks, "{status}");
    assert_eq!(status["embedder"], EMBEDDER_ID, "{status}");
    for (name, word) in words {
        let results = cli.search("handbook", word).await;
        assert_eq!(results["mode"], "hybrid", "{results}");
        assert_eq!(hits(&results)[0]["path"], *name, "{word}: {results}");
        assert_eq!(
            hits(&results)[0]["document_id"],
            docs[*name]["id"],
            "{results}"
        );
    }
    // Everything the index returns is in the store, once.
    let all = cli.search("handbook", "policy desk logo travel").await;
    let mut seen = BTreeSet::new();
    for hit in hits(&all) {
        let key = (hit["document_id"].to_string(), hit["ordinal"].to_string());
        assert!(seen.insert(key), "duplicate passage {hit}");
        let path = hit["path"].as_str().expect("path");
        assert_eq!(hit["document_id"], docs[path]["id"], "{hit}");
    }
    assert_eq!(seen.len() as i64, chunks, "{all}");
}

#[tokio::test]
async fn sigkill_during_ingestion_then_add_again_ingests_each_document_once() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    let words = crash_folder(&docs);
    let data = dir.path().join("data");
    let config = config(dir.path(), &embedder_config(&model));
    let mut server = start(&data, &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    // One document goes in before the crash.
    cli.run(&[
        "knowledge",
        "add",
        path(&docs.join("a.md")),
        "--source",
        "handbook",
        "--quiet",
    ])
    .await
    .ok();
    assert!(model.embedding_request_count() >= 1);

    // The embedder stops answering; the next document's ingest hangs in it.
    model.embedding_hang(true);
    let before = model.embedding_request_count();
    let mut add = cli
        .command(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .spawn()
        .expect("spawn add");
    wait_for("an embeddings request for the folder", || {
        model.embedding_request_count() > before
    })
    .await;
    server.kill();
    add.start_kill().expect("kill add");
    add.wait().await.expect("wait add");
    model.embedding_hang(false);

    let server = start(&data, &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));
    // Nothing half-stored: only the document that finished before the crash.
    let stored = cli.documents("handbook").await;
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["a.md"]);
    assert_eq!(stored["a.md"]["version"], 1);
    // Its passages survived the crash in the index too, vectors included
    // (the vector part is only snapshotted now and then: the restart
    // replays the log from the older of the two watermarks).
    let status = cli.index_status().await;
    assert_eq!(status["applied"], status["head"], "{status}");
    assert_eq!(status["documents"], stored["a.md"]["chunks"], "{status}");
    assert_eq!(status["vectors"], stored["a.md"]["chunks"], "{status}");
    assert_eq!(hit_paths(&cli.search("handbook", "alpaca").await), ["a.md"]);

    let out = cli
        .run(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .await
        .ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 3 ingested, 1 unchanged, 0 removed, 0 failed"
    );
    assert_consistent(&cli, &words).await;
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_store() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    let words = crash_folder(&docs);
    let data = dir.path().join("data");
    let config = config(dir.path(), &embedder_config(&model));
    let mut server = start(&data, &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    // A log with creates, a replaced version and a delete to replay.
    write(&docs, "gone.txt", "The gannet rota is retired.\n");
    write(
        &docs,
        "b.txt",
        "Buffalo sightings go to the wildlife desk.\n",
    );
    let add = [
        "knowledge",
        "add",
        path(&docs),
        "--source",
        "handbook",
        "--quiet",
    ];
    cli.run(&add).await.ok();
    write(&docs, "b.txt", "Bison sightings go to the wildlife desk.\n");
    std::fs::remove_file(docs.join("gone.txt")).expect("rm");
    let out = cli.run(&add).await.ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 1 ingested, 3 unchanged, 1 removed, 0 failed"
    );
    assert_eq!(cli.documents("handbook").await["b.txt"]["version"], 2);
    let memory = cli
        .run(&[
            "memory",
            "add",
            "Ada prefers tea",
            "--namespace",
            "users/ada",
        ])
        .await
        .ok();
    let memory_id = memory
        .stdout
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned();
    let before = cli.index_status().await;
    assert_eq!(before["applied"], before["head"], "{before}");

    // Crash, and lose the index with it.
    server.kill();
    std::fs::remove_dir_all(data.join("index")).expect("remove the index");
    let server = start(&data, &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    let after = cli.index_status().await;
    assert_eq!(after["applied"], after["head"], "{after}");
    assert_eq!(after["head"], before["head"], "{after}");
    assert_eq!(after["documents"], before["documents"], "{after}");
    assert_eq!(after["vectors"], before["vectors"], "{after}");
    let docs_now = cli.documents("handbook").await;
    let chunks: i64 = docs_now
        .values()
        .map(|d| d["chunks"].as_i64().expect("n"))
        .sum();
    assert_eq!(after["documents"], chunks + 1, "{after}");
    for (name, word) in &words {
        assert_eq!(
            hit_paths(&cli.search("handbook", word).await)[0],
            *name,
            "{word}"
        );
    }
    for gone in ["buffalo", "gannet"] {
        let results = cli.search("handbook", gone).await;
        assert!(
            hits(&results).iter().all(|h| !h["text"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(gone)),
            "{gone}: {results}"
        );
    }
    let found = cli
        .run(&["memory", "search", "tea", "-n", "users/ada", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        found["data"][0]["record"]["id"],
        memory_id.as_str(),
        "{found}"
    );

    // A rebuild on demand gives the same index, and reports what it indexed.
    let report = cli.run(&["index", "rebuild"]).await.ok().json();
    assert_eq!(report["records"], chunks + 1, "{report}");
    assert_eq!(
        report["status"]["applied"], report["status"]["head"],
        "{report}"
    );
    assert_eq!(report["status"]["documents"], chunks + 1, "{report}");
    assert_eq!(report["status"]["vectors"], chunks + 1, "{report}");
    assert!(!data.join("index.rebuild").exists());
    assert!(!data.join("index.old").exists());
    for (name, word) in &words {
        assert_eq!(
            hit_paths(&cli.search("handbook", word).await)[0],
            *name,
            "{word}"
        );
    }
    // A wrong key is refused in one line.
    let mut stranger = Cli::new(&server, &dir.path().join("cli"));
    stranger.key = "not-a-key-not-a-key".to_owned();
    let out = stranger.run(&["index", "rebuild"]).await.one_error();
    assert!(out.stderr.contains("unauthorized"), "{}", out.stderr);
}

#[tokio::test]
async fn an_embedder_failure_during_ingest_is_repaired_by_the_backfill() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("company");
    write(&docs, "b.txt", "Bison sightings go to the wildlife desk.\n");
    let config = config(dir.path(), &embedder_config(&model));
    let server = start(&dir.path().join("data"), &model.openai_base_url(), &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    // The embedder refuses the document's chunks: the document is stored
    // and searchable all the same, without vectors.
    model.embedding_failures(1, 400);
    let out = cli
        .run(&[
            "knowledge",
            "add",
            path(&docs),
            "--source",
            "handbook",
            "--quiet",
        ])
        .await
        .ok();
    assert_eq!(
        out.stdout.trim(),
        "handbook: 1 ingested, 0 unchanged, 0 removed, 0 failed"
    );
    assert_eq!(hit_paths(&cli.search("handbook", "bison").await), ["b.txt"]);
    // The backfill embeds it once the embedder answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = cli.index_status().await;
        if status["vectors"] == status["documents"] && status["applied"] == status["head"] {
            assert_eq!(status["documents"], 1, "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "never embedded: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results = cli.search("handbook", "bison").await;
    assert_eq!(results["mode"], "hybrid", "{results}");
    assert_eq!(hit_paths(&results), ["b.txt"]);
}

// ---------------------------------------------------------------------------
// 6. `roster index status`
// ---------------------------------------------------------------------------

#[tokio::test]
async fn index_status_shows_how_far_the_index_has_caught_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), "");
    let server = start(&dir.path().join("data"), NO_MODEL, &config).await;
    let cli = Cli::new(&server, &dir.path().join("cli"));

    let status = cli.index_status().await;
    assert_eq!(
        status,
        json!({"applied": 0, "head": 0, "documents": 0, "vectors": 0, "embedder": null,
               "vector_search": null})
    );

    let docs = dir.path().join("company");
    write(&docs, "handbook.md", handbook_md());
    cli.run(&[
        "knowledge",
        "add",
        path(&docs),
        "--source",
        "handbook",
        "--quiet",
    ])
    .await
    .ok();
    let out = cli
        .run(&[
            "memory",
            "add",
            "Ada prefers tea",
            "--namespace",
            "users/ada",
        ])
        .await
        .ok();
    let id = out.stdout.split_whitespace().next().expect("id").to_owned();
    let chunks = cli.documents("handbook").await["handbook.md"]["chunks"]
        .as_i64()
        .expect("chunks");
    let status = cli.index_status().await;
    let mut keys: Vec<&String> = status.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "applied",
            "documents",
            "embedder",
            "head",
            "vector_search",
            "vectors"
        ]
    );
    assert!(status["head"].as_i64() >= Some(2), "{status}");
    assert_eq!(status["applied"], status["head"], "{status}");
    assert_eq!(status["documents"], chunks + 1, "{status}");
    assert_eq!(status["vectors"], 0, "{status}");
    assert_eq!(status["embedder"], Value::Null, "{status}");

    let head = status["head"].as_i64().expect("head");
    cli.run(&["memory", "delete", &id]).await.ok();
    let status = cli.index_status().await;
    assert!(status["head"].as_i64() > Some(head), "{status}");
    assert_eq!(status["applied"], status["head"], "{status}");
    assert_eq!(status["documents"], chunks, "{status}");
}
