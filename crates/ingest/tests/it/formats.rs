//! End-to-end parsing of each text-based kind with inputs built here:
//! Markdown headings, HTML titles, CSV rows, encodings.

use crate::common;

use common::char_slice;
use roster_ingest::{parse, ChunkOptions, DocumentKind, ParsedDocument};

fn small() -> ChunkOptions {
    ChunkOptions {
        target_chars: 200,
        overlap_chars: 40,
        ..ChunkOptions::default()
    }
}

fn parse_ok(path: &str, bytes: &[u8], options: &ChunkOptions) -> ParsedDocument {
    parse(path, None, bytes, options).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// For kinds whose extracted text is the input itself, every chunk must be
/// exactly the text its location points at.
fn assert_offsets_match(source: &str, doc: &ParsedDocument) {
    assert_eq!(doc.text_chars, source.chars().count() as u64);
    for chunk in &doc.chunks {
        let loc = &chunk.location;
        assert_eq!(
            char_slice(source, loc.char_start, loc.char_end),
            chunk.text,
            "chunk {} offsets",
            chunk.ordinal
        );
        let line_of = |ch: u64| {
            1 + source
                .chars()
                .take(ch as usize)
                .filter(|c| *c == '\n')
                .count() as u32
        };
        assert_eq!(loc.line_start, Some(line_of(loc.char_start)));
        assert_eq!(loc.line_end, Some(line_of(loc.char_end - 1)));
    }
}

#[test]
fn plain_text_lines_and_offsets() {
    let source: String = (1..=60)
        .map(|i| format!("Line {i}: the quick brown fox jumps over the lazy dog.\n"))
        .collect();
    let doc = parse_ok("notes.txt", source.as_bytes(), &small());
    assert_eq!(doc.kind, DocumentKind::Text);
    assert!(doc.chunks.len() > 5);
    assert_offsets_match(&source, &doc);
    let first = &doc.chunks[0];
    assert_eq!(first.location.line_start, Some(1));
    assert!(first.location.cite().starts_with("lines 1-"));
    assert_eq!(first.location.heading, None);
    let last = doc.chunks.last().expect("chunks");
    assert_eq!(last.location.line_end, Some(60));
}

#[test]
fn markdown_headings_become_paths() {
    let filler = "Employees should read this section carefully before asking. ";
    let source = format!(
        "Intro text.\n\n# Leave\n\n{a}\n\n## Parental leave\n\n{b}\n\n## Sick leave\n\n{c}\n\n# Pay\n\n{d}\n",
        a = filler.repeat(3),
        b = filler.repeat(4),
        c = filler.repeat(2),
        d = filler.repeat(3),
    );
    let options = ChunkOptions {
        target_chars: 300,
        overlap_chars: 50,
        ..ChunkOptions::default()
    };
    let doc = parse_ok("handbook.md", source.as_bytes(), &options);
    assert_eq!(doc.kind, DocumentKind::Markdown);
    assert_offsets_match(&source, &doc);
    let heading_of = |needle: &str| {
        doc.chunks
            .iter()
            .find(|c| c.text.starts_with(needle))
            .unwrap_or_else(|| panic!("no chunk starts with {needle}: {:#?}", doc.chunks))
            .location
            .heading
            .clone()
    };
    assert_eq!(
        heading_of("## Parental").as_deref(),
        Some("Leave > Parental leave")
    );
    assert_eq!(heading_of("## Sick").as_deref(), Some("Leave > Sick leave"));
    assert_eq!(heading_of("# Pay").as_deref(), Some("Pay"));
    let sick = doc
        .chunks
        .iter()
        .find(|c| c.text.starts_with("## Sick"))
        .expect("sick chunk");
    let line = source
        .lines()
        .position(|l| l == "## Sick leave")
        .expect("line") as u32
        + 1;
    assert_eq!(sick.location.line_start, Some(line));
    assert!(sick.location.cite().ends_with("(§ Leave > Sick leave)"));
}

#[test]
fn html_text_title_and_headings() {
    let html = "<!DOCTYPE html><html><head><title>Acme Handbook</title>\
        <script>trackEverything()</script><style>body{}</style></head><body>\
        <h1>Acme Handbook</h1><p>Welcome aboard.</p>\
        <h2>Holidays</h2><p>We close between Christmas and New Year.</p>\
        <p>Ask your manager about <a href='/x'>exceptions</a>.</p></body></html>";
    let doc = parse_ok("handbook.html", html.as_bytes(), &ChunkOptions::default());
    assert_eq!(doc.kind, DocumentKind::Html);
    assert_eq!(doc.chunks.len(), 1);
    let chunk = &doc.chunks[0];
    assert!(!chunk.text.contains("trackEverything"));
    assert!(
        chunk
            .text
            .contains("Welcome aboard.\n\n## Holidays\n\nWe close"),
        "{:?}",
        chunk.text
    );
    assert_eq!(chunk.location.line_start, Some(1));
    assert!(chunk
        .location
        .heading
        .as_deref()
        .is_some_and(|h| h.starts_with("Acme Handbook")));

    let options = ChunkOptions {
        target_chars: 40,
        overlap_chars: 0,
        ..ChunkOptions::default()
    };
    let doc = parse_ok("handbook.htm", html.as_bytes(), &options);
    let holidays = doc
        .chunks
        .iter()
        .find(|c| c.text.contains("We close"))
        .expect("holiday chunk");
    assert_eq!(
        holidays.location.heading.as_deref(),
        Some("Acme Handbook > Holidays")
    );
}

#[test]
fn html_title_without_headings_heads_every_chunk() {
    let html = format!(
        "<html><head><title>Policy</title></head><body><p>{}</p></body></html>",
        "Rules are rules. ".repeat(40)
    );
    let doc = parse_ok("p.html", html.as_bytes(), &small());
    assert!(doc.chunks.len() > 1);
    for chunk in &doc.chunks {
        assert_eq!(chunk.location.heading.as_deref(), Some("Policy"));
    }
}

#[test]
fn csv_rows_stand_alone() {
    let mut source = String::from("name,team,notes\n");
    for i in 1..=50 {
        source.push_str(&format!(
            "Person {i},Team {},\"likes\nmultiline, quoted notes\"\n",
            i % 3
        ));
    }
    let doc = parse_ok("people.csv", source.as_bytes(), &small());
    assert_eq!(doc.kind, DocumentKind::Csv);
    assert!(doc.chunks.len() > 3);
    let mut expected_row = 1;
    for chunk in &doc.chunks {
        let loc = &chunk.location;
        assert_eq!(loc.row_start, Some(expected_row), "{chunk:?}");
        let lines: Vec<&str> = chunk.text.lines().collect();
        assert_eq!(
            lines.len() as u64,
            loc.row_end.expect("row_end") - expected_row + 1
        );
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                *line,
                format!(
                    "name: Person {n}; team: Team {t}; notes: likes multiline, quoted notes",
                    n = expected_row + i as u64,
                    t = (expected_row + i as u64) % 3
                )
            );
        }
        assert_eq!(loc.line_start, None);
        assert!(loc.cite().starts_with("row"));
        expected_row = loc.row_end.expect("row_end") + 1;
    }
    assert_eq!(expected_row, 51, "every row is covered exactly once");
}

#[test]
fn tsv_and_semicolon_tables() {
    let doc = parse_ok("t.tsv", b"a\tb\n1\t2\n", &ChunkOptions::default());
    assert_eq!(doc.chunks[0].text, "a: 1; b: 2");
    let doc = parse_ok("t.csv", b"a;b\n1,5;2\n", &ChunkOptions::default());
    assert_eq!(doc.chunks[0].text, "a: 1,5; b: 2");
    assert_eq!(doc.chunks[0].location.cite(), "row 1");
}

#[test]
fn giant_csv_cell_is_split_but_keeps_its_row() {
    let cell = "This is a very long comment. ".repeat(100);
    let source = format!("id,comment\n1,short\n2,{cell}\n3,short\n");
    let doc = parse_ok("c.csv", source.as_bytes(), &small());
    let row2: Vec<_> = doc
        .chunks
        .iter()
        .filter(|c| c.location.row_start == Some(2))
        .collect();
    assert!(row2.len() > 5);
    for chunk in &row2 {
        assert_eq!(chunk.location.row_end, Some(2));
        assert!(chunk.text.chars().count() <= 300);
    }
}

#[test]
fn utf16_file_with_bom() {
    let text = "Überstunden werden ausgezahlt.\r\nZweite Zeile.";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let doc = parse_ok("de.txt", &bytes, &ChunkOptions::default());
    assert_eq!(
        doc.chunks[0].text,
        "Überstunden werden ausgezahlt.\nZweite Zeile."
    );
    assert_eq!(doc.chunks[0].location.cite(), "lines 1-2");

    let mut be = vec![0xFE, 0xFF];
    be.extend("# Titel\nText".encode_utf16().flat_map(u16::to_be_bytes));
    let doc = parse_ok("de.md", &be, &ChunkOptions::default());
    assert_eq!(doc.chunks[0].location.heading.as_deref(), Some("Titel"));
}

#[test]
fn windows_1252_text() {
    let bytes = b"Caf\xE9 men\xFC \x96 \x93quoted\x94 na\xEFve r\xE9sum\xE9\r\n";
    let doc = parse_ok("legacy.txt", bytes, &ChunkOptions::default());
    assert_eq!(doc.chunks[0].text, "Café menü – “quoted” naïve résumé");
}

#[test]
fn unknown_extension_text_and_extensionless() {
    let doc = parse_ok("config.yaml", b"key: value\n", &ChunkOptions::default());
    assert_eq!(doc.kind, DocumentKind::Text);
    let doc = parse_ok("README", b"Read me.\n", &ChunkOptions::default());
    assert_eq!(doc.kind, DocumentKind::Text);
    let doc = parse(
        "upload",
        Some("text/markdown"),
        b"# T\nx",
        &ChunkOptions::default(),
    )
    .expect("parse");
    assert_eq!(doc.kind, DocumentKind::Markdown);
}

#[test]
fn serde_shape() {
    let doc = parse_ok("a.md", b"# A\nhello", &ChunkOptions::default());
    let json = serde_json::to_value(&doc).expect("json");
    assert_eq!(json["kind"], "markdown");
    assert_eq!(json["chunks"][0]["location"]["heading"], "A");
    assert!(json["chunks"][0]["location"].get("page_start").is_none());
    assert!(json.get("warnings").is_none());
}
