//! A linear, forgiving scan over HTML tags: estimating how deeply a page
//! nests, and a plain tag-stripping fallback for pages nested so deeply
//! that a full HTML parser would take quadratic time on them.
//!
//! This is a guard, not a parser. It must never be the normal path for
//! well-formed pages (html2text renders those far better), must never
//! panic (it is also the fallback when html2text does), and every loop
//! here must stay linear in the input, whatever the input.

use std::collections::HashMap;

use crate::html::decode_entities;

/// Elements that never nest: void elements, and those whose end tag is
/// optional (the parser closes them implicitly, so unclosed ones do not
/// deepen the tree).
fn never_nests(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "p"
            | "li"
            | "dt"
            | "dd"
            | "tr"
            | "td"
            | "th"
            | "option"
            | "optgroup"
            | "thead"
            | "tbody"
            | "tfoot"
            | "colgroup"
            | "rp"
            | "rt"
            | "html"
            | "head"
            | "body"
    )
}

/// Elements whose content is not markup, or not meant to be read.
fn raw_text(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "textarea" | "title" | "template" | "noscript"
    )
}

/// Elements that start a new block of text.
fn block_break(name: &str) -> Option<&'static str> {
    Some(match name {
        "br" | "li" | "tr" | "dt" | "dd" => "\n",
        "p" | "div" | "section" | "article" | "header" | "footer" | "main" | "nav" | "aside"
        | "ul" | "ol" | "dl" | "table" | "blockquote" | "pre" | "hr" | "form" | "figure" => "\n\n",
        _ => return None,
    })
}

enum Token<'a> {
    Text(&'a str),
    Open(String),
    Close(String),
    /// A self-closing tag such as `<br/>`: never has content.
    Empty(String),
}

/// Walks `html` as text runs and tags, skipping comments, doctypes and
/// raw-text element bodies. `visit` sees every text run and tag in order.
fn scan<'a>(html: &'a str, mut visit: impl FnMut(Token<'a>)) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(lt) = memchr_from(bytes, b'<', i) else {
            visit(Token::Text(&html[i..]));
            return;
        };
        if lt > i {
            visit(Token::Text(&html[i..lt]));
        }
        let rest = &html[lt..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(bytes.len(), |e| lt + e + 3);
            continue;
        }
        let closing = rest.starts_with("</");
        let name_at = lt + 1 + usize::from(closing);
        let name_len = bytes[name_at.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let starts_tag = bytes.get(name_at).is_some_and(u8::is_ascii_alphabetic);
        if !starts_tag && !rest.starts_with("<!") && !rest.starts_with("<?") {
            // A bare `<` in text, such as "a < b".
            visit(Token::Text(&html[lt..lt + 1]));
            i = lt + 1;
            continue;
        }
        let end = memchr_from(bytes, b'>', lt).map_or(bytes.len(), |e| e + 1);
        i = end;
        if !starts_tag {
            continue;
        }
        let name = html[name_at..name_at + name_len].to_ascii_lowercase();
        if closing {
            visit(Token::Close(name));
            continue;
        }
        let self_closing = html[..end].ends_with("/>");
        if raw_text(&name) && !self_closing {
            let close = format!("</{name}");
            i = find_ci(html, &close, end).map_or(bytes.len(), |at| {
                memchr_from(bytes, b'>', at).map_or(bytes.len(), |e| e + 1)
            });
            continue;
        }
        visit(if self_closing {
            Token::Empty(name)
        } else {
            Token::Open(name)
        });
    }
}

/// Estimated maximum element depth, by counting open and close tags of
/// elements that nest. A close tag only counts if that element is open,
/// so stray end tags cannot hide real nesting. Over-estimates on sloppy
/// markup, which only sends such pages to the fallback.
pub(crate) fn nesting_depth(html: &str) -> usize {
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut depth = 0usize;
    let mut max = 0usize;
    scan(html, |token| match token {
        Token::Open(name) if !never_nests(&name) => {
            *open.entry(name).or_insert(0) += 1;
            depth += 1;
            max = max.max(depth);
        }
        Token::Close(name) if !never_nests(&name) => {
            if let Some(n) = open.get_mut(&name).filter(|n| **n > 0) {
                *n -= 1;
                depth = depth.saturating_sub(1);
            }
        }
        _ => {}
    });
    max
}

/// Text of `html` with tags removed, blocks on their own lines and
/// headings marked `#` like html2text does, so the outline still works.
pub(crate) fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    scan(html, |token| match token {
        Token::Text(text) => push_text(&mut out, text),
        Token::Open(name) | Token::Empty(name) => {
            if let Some(level) = heading_level(&name) {
                out.push_str("\n\n");
                out.push_str(&"#".repeat(level));
                out.push(' ');
            } else if let Some(brk) = block_break(&name) {
                out.push_str(brk);
            }
        }
        Token::Close(name) => {
            if heading_level(&name).is_some() {
                out.push_str("\n\n");
            } else if let Some(brk) = block_break(&name) {
                out.push_str(brk);
            }
        }
    });
    out
}

fn heading_level(name: &str) -> Option<usize> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
        _ => None,
    }
}

/// Appends text with entity references decoded and whitespace runs
/// collapsed, as a browser would display it.
fn push_text(out: &mut String, text: &str) {
    let decoded;
    let text = if text.contains('&') {
        decoded = decode_entities(text);
        decoded.as_str()
    } else {
        text
    };
    let starts_ws = text.starts_with(char::is_whitespace);
    let ends_ws = text.ends_with(char::is_whitespace);
    let mut words = text.split_whitespace().peekable();
    if words.peek().is_none() {
        if starts_ws && !out.ends_with(char::is_whitespace) {
            out.push(' ');
        }
        return;
    }
    if starts_ws && !out.ends_with(char::is_whitespace) {
        out.push(' ');
    }
    let mut first = true;
    for word in words {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
    if ends_ws {
        out.push(' ');
    }
}

fn memchr_from(bytes: &[u8], needle: u8, from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|p| p + from)
}

/// Case-insensitive search for an ASCII `needle` from byte `from`.
fn find_ci(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let h = haystack.as_bytes().get(from..)?;
    let n = needle.as_bytes();
    let first = n.first()?.to_ascii_lowercase();
    let mut i = 0;
    while i + n.len() <= h.len() {
        if h[i].to_ascii_lowercase() == first && h[i..i + n.len()].eq_ignore_ascii_case(n) {
            return Some(from + i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_nesting_elements() {
        assert_eq!(nesting_depth("<div><div><span>x</span></div></div>"), 3);
        assert_eq!(nesting_depth("<p>a<p>b<p>c<br><img src=x>"), 0);
        assert_eq!(nesting_depth("<div/><div></div>"), 1);
        assert_eq!(nesting_depth(&"<div>".repeat(1000)), 1000);
        assert_eq!(nesting_depth("<script><div><div></script><b>x</b>"), 1);
        assert_eq!(nesting_depth("<!-- <div><div> --> a < b"), 0);
        assert_eq!(nesting_depth(&"<div></span>".repeat(50)), 50);
    }

    #[test]
    fn strips_tags_keeping_blocks_and_headings() {
        let html = "<html><head><title>T</title><style>p{}</style></head><body>\
            <h1>Top</h1><div>one   two<br>three</div><script>evil()</script>\
            <p>R&amp;D &lt;ok&gt;<br/>next</p><!-- hidden --><h2>Sub</h2>tail a < b</body></html>";
        let text = strip_tags(html);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            [
                "# Top",
                "one two",
                "three",
                "R&D <ok>",
                "next",
                "## Sub",
                "tail a < b"
            ]
        );
    }

    #[test]
    fn unterminated_constructs_end_the_scan() {
        assert_eq!(strip_tags("a <!-- never closed").trim(), "a");
        assert_eq!(strip_tags("a <script> x").trim(), "a");
        assert_eq!(strip_tags("a <div").trim(), "a");
    }
}
