//! Readable text out of HTML: html2text does the rendering (dropping
//! `<script>`/`<style>`, keeping block breaks, prefixing headings with
//! `#`), and the `<title>` is pulled out separately to head the outline.
//! Pathologically nested pages, and pages html2text panics on, go through
//! the plain tag stripper in `markup` instead.
//!
//! It must never execute, fetch or follow anything the page references,
//! and never wrap lines: wrapping would invent line breaks that are not in
//! the content and make chunks cut mid-sentence.

use crate::{markup, DocumentKind, IngestError};

/// Effectively "never wrap": html2text needs a width, and paragraphs are
/// far shorter than this in practice.
const RENDER_WIDTH: usize = 1_000_000;

/// Pages nesting deeper than this skip the HTML parser, whose time grows
/// with depth times tag count (a few MB of nested `<div>`s would stall it
/// for minutes), for the linear tag stripper. Real pages stay far below.
const MAX_PARSER_DEPTH: usize = 256;

/// Rendered text plus the document title, if it has a non-empty one.
pub(crate) struct Extracted {
    pub text: String,
    pub title: Option<String>,
}

pub(crate) fn extract(path: &str, html: &str) -> Result<Extracted, IngestError> {
    let text = if markup::nesting_depth(html) > MAX_PARSER_DEPTH {
        markup::strip_tags(html)
    } else {
        let rendered = std::panic::catch_unwind(|| {
            html2text::config::plain_no_decorate()
                .no_table_borders()
                .allow_width_overflow()
                .string_from_read(html.as_bytes(), RENDER_WIDTH)
        });
        match rendered {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => {
                return Err(IngestError::malformed(
                    path,
                    DocumentKind::Html,
                    e.to_string(),
                ))
            }
            // A renderer bug on odd markup should cost layout, not the
            // document: the stripper shares no code with it and keeps the
            // text.
            Err(_) => markup::strip_tags(html),
        }
    };
    Ok(Extracted {
        text: tidy(&text),
        title: title(html),
    })
}

/// html2text pads with trailing spaces and stacks blank lines around
/// nested blocks; neither carries meaning, and both would inflate chunks.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Starting "inside" a blank run drops leading blank lines too.
    let mut blank_run = 1usize;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The first `<title>` in the raw markup. Titles are plain character data
/// (no nested tags), so a case-insensitive scan plus entity decoding is
/// exact enough and avoids walking the DOM a second time.
fn title(html: &str) -> Option<String> {
    const SCAN_LIMIT: usize = 64 * 1024;
    let mut end = html.len().min(SCAN_LIMIT);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let head = &html[..end];
    let open = find_ascii_ci(head, "<title")?;
    let after_tag = open + head[open..].find('>')? + 1;
    let close = after_tag + find_ascii_ci(&head[after_tag..], "</title")?;
    let raw = &head[after_tag..close];
    let title = decode_entities(raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// The entities that actually occur in titles; anything else is kept
/// verbatim, which is still readable.
pub(crate) fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => numeric_entity(name),
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn numeric_entity(name: &str) -> Option<char> {
    let digits = name.strip_prefix('#')?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_scripts_and_keeps_paragraphs() {
        let html = "<html><head><title>Staff &amp; Pay</title><style>p{color:red}</style>\
            <script>var secret = 1;</script></head><body><h1>Handbook</h1>\
            <p>First paragraph.</p><p>Second paragraph.</p><h2>Leave</h2><p>Take it.</p></body></html>";
        let out = extract("a.html", html).expect("extract");
        assert_eq!(out.title.as_deref(), Some("Staff & Pay"));
        assert!(!out.text.contains("secret"), "{}", out.text);
        assert!(!out.text.contains("color"), "{}", out.text);
        assert!(
            out.text.contains("First paragraph.\n\nSecond paragraph."),
            "{}",
            out.text
        );
        assert!(out.text.contains("# Handbook\n"), "{}", out.text);
        assert!(out.text.contains("## Leave\n"), "{}", out.text);
    }

    #[test]
    fn long_paragraphs_are_not_wrapped() {
        let para = "word ".repeat(500);
        let out = extract("a.html", &format!("<p>{para}</p>")).expect("extract");
        assert_eq!(out.text.trim(), para.trim());
    }

    #[test]
    fn deep_nesting_falls_back_and_stays_fast() {
        let depth = 50_000;
        let html = format!(
            "<title>Deep</title><h1>Top</h1>{}<p>deep text</p>{}<p>after</p>",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        let started = std::time::Instant::now();
        let out = extract("deep.html", &html).expect("extract");
        assert_eq!(out.title.as_deref(), Some("Deep"));
        assert!(out.text.starts_with("# Top\n"), "{}", out.text);
        assert!(out.text.contains("deep text\n\nafter"), "{}", out.text);
        // The full parser needs minutes for this; the fallback milliseconds.
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    }

    #[test]
    fn titles() {
        assert_eq!(
            title("<TITLE lang=en>\n A &lt;b&gt; &#65;&#x42; </TITLE>").as_deref(),
            Some("A <b> AB")
        );
        assert_eq!(title("<title></title>"), None);
        assert_eq!(title("<p>no title</p>"), None);
        assert_eq!(
            decode_entities("R&D & co &bogus; &#xZZ;"),
            "R&D & co &bogus; &#xZZ;"
        );
    }

    #[test]
    fn tidy_collapses_blank_runs() {
        assert_eq!(tidy("a  \n\n\n\nb\n"), "a\n\nb\n");
        assert_eq!(tidy("\n \nx"), "x\n");
    }
}
