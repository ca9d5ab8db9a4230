//! Finding Markdown headings (ATX `#` and setext underlines) and the
//! heading path in force at each point of a document.
//!
//! Markdown is indexed as written, so this module only reads structure;
//! it must never rewrite the text, or chunk offsets would stop matching
//! what the user uploaded.

/// Section starts (byte offsets of heading lines) with the heading path
/// that applies from there on, e.g. `Leave > Parental leave`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outline {
    pub starts: Vec<usize>,
    pub paths: Vec<String>,
}

impl Outline {
    /// Heading path of the section holding the largest share of the byte
    /// range `start..end`: a chunk that begins with the tail of one section
    /// (overlap) but is mostly the next belongs to the next. Ties go to the
    /// earlier section.
    pub fn dominant_heading(&self, start: usize, end: usize) -> Option<&str> {
        let first = self.starts.partition_point(|&s| s <= start);
        // `None` stands for text before the first heading.
        let until = self.starts.get(first).map_or(end, |&s| s.min(end));
        let mut best: (Option<usize>, usize) = (first.checked_sub(1), until - start);
        for i in first..self.starts.len() {
            let from = self.starts[i];
            if from >= end {
                break;
            }
            let until = self.starts.get(i + 1).map_or(end, |&s| s.min(end));
            if until - from > best.1 {
                best = (Some(i), until - from);
            }
        }
        best.0
            .and_then(|i| self.paths.get(i))
            .map(String::as_str)
            .filter(|p| !p.is_empty())
    }

    /// Puts `root` (such as an HTML `<title>`) above every heading, and in
    /// force from the start of the document.
    pub fn with_root(mut self, root: &str) -> Self {
        let root = root.trim();
        if root.is_empty() {
            return self;
        }
        for path in &mut self.paths {
            // A page's first heading usually repeats its title.
            if path != root && !path.starts_with(&format!("{root} > ")) {
                *path = format!("{root} > {path}");
            }
        }
        if self.starts.first() != Some(&0) {
            self.starts.insert(0, 0);
            self.paths.insert(0, root.to_owned());
        }
        self
    }
}

struct Fence {
    marker: u8,
    len: usize,
}

/// Scans line by line, once. Headings inside fenced code blocks and YAML
/// front matter are ignored since they are not headings.
pub(crate) fn outline(text: &str) -> Outline {
    let mut out = Outline::default();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut fence: Option<Fence> = None;
    // Previous line, if it could be the text of a setext heading.
    let mut setext_candidate: Option<(usize, &str)> = None;
    let mut offset = 0usize;
    let mut in_front_matter = text.starts_with("---\n");
    let mut first = true;

    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if std::mem::take(&mut first) && in_front_matter {
            continue;
        }
        if in_front_matter {
            in_front_matter = !matches!(line.trim_end(), "---" | "...");
            continue;
        }
        let Some(body) = strip_indent(line) else {
            setext_candidate = None;
            continue;
        };
        if let Some(open) = &fence {
            if is_fence_close(body, open) {
                fence = None;
            }
            continue;
        }
        if let Some(f) = fence_open(body) {
            fence = Some(f);
            setext_candidate = None;
            continue;
        }
        let heading = if let Some((level, title)) = atx_heading(body) {
            Some((start, level, title.to_owned()))
        } else if let Some(level) = setext_level(body) {
            setext_candidate.map(|(s, t)| (s, level, t.trim().to_owned()))
        } else {
            None
        };
        match heading {
            Some((at, level, title)) => {
                setext_candidate = None;
                if title.is_empty() {
                    continue;
                }
                while stack.last().is_some_and(|(l, _)| *l >= level) {
                    stack.pop();
                }
                stack.push((level, title));
                let path = stack
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" > ");
                // A setext heading starts at its text line, which may
                // already be recorded if it was itself a heading: replace.
                if out.starts.last() == Some(&at) {
                    out.paths.pop();
                    out.starts.pop();
                }
                out.starts.push(at);
                out.paths.push(path);
            }
            None => {
                let could_be_title = !body.trim().is_empty() && !is_list_item(body);
                setext_candidate = could_be_title.then_some((start, body));
            }
        }
    }
    out
}

/// Up to three spaces of indentation are allowed; more makes a code block.
fn strip_indent(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|b| *b == b' ').count();
    (spaces <= 3).then(|| &line[spaces..])
}

fn atx_heading(body: &str) -> Option<(usize, &str)> {
    let level = body.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &body[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // A closing run of `#` is decoration, but only after whitespace.
    let without_closing = rest.trim_end_matches('#');
    let title = if without_closing.is_empty() {
        ""
    } else if without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        rest
    };
    Some((level, title))
}

fn setext_level(body: &str) -> Option<usize> {
    let t = body.trim_end();
    if t.is_empty() {
        None
    } else if t.bytes().all(|b| b == b'=') {
        Some(1)
    } else if t.bytes().all(|b| b == b'-') {
        Some(2)
    } else {
        None
    }
}

fn is_list_item(body: &str) -> bool {
    let b = body.as_bytes();
    if matches!(b, [b'-' | b'*' | b'+', b' ' | b'\t', ..]) {
        return true;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && matches!(&b[digits..], [b'.' | b')', b' ' | b'\t', ..])
}

fn fence_open(body: &str) -> Option<Fence> {
    let marker = *body.as_bytes().first()?;
    if marker != b'`' && marker != b'~' {
        return None;
    }
    let len = body.bytes().take_while(|b| *b == marker).count();
    // Backtick fences may not have backticks in their info string.
    let info_ok = marker == b'~' || !body[len..].contains('`');
    (len >= 3 && info_ok).then_some(Fence { marker, len })
}

fn is_fence_close(body: &str, open: &Fence) -> bool {
    let len = body.bytes().take_while(|b| *b == open.marker).count();
    len >= open.len && body[len..].trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headings(text: &str) -> Vec<(usize, String)> {
        let o = outline(text);
        o.starts.into_iter().zip(o.paths).collect()
    }

    #[test]
    fn atx_paths_nest_and_unwind() {
        let text =
            "intro\n# Leave\ntext\n## Parental leave\nmore\n### Notes ###\n## Sick leave\n# Pay\n";
        let h = headings(text);
        let paths: Vec<&str> = h.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Leave",
                "Leave > Parental leave",
                "Leave > Parental leave > Notes",
                "Leave > Sick leave",
                "Pay"
            ]
        );
        assert_eq!(h[0].0, text.find("# Leave").expect("found"));
    }

    #[test]
    fn heading_in_force_looks_backwards() {
        let text = "intro\n# A\nbody\n## B\nbody\n";
        let o = outline(text);
        let at = |b: usize| o.dominant_heading(b, b + 1);
        assert_eq!(at(0), None);
        assert_eq!(at(text.find("body").expect("found")), Some("A"));
        assert_eq!(at(text.len() - 2), Some("A > B"));
    }

    #[test]
    fn dominant_heading_takes_the_largest_share() {
        let text = "# A\naaaaaaaaaa\n# B\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n# C\nc\n";
        let o = outline(text);
        let b = text.find("# B").expect("found");
        let c = text.find("# C").expect("found");
        assert_eq!(o.dominant_heading(0, text.len()), Some("B"));
        assert_eq!(o.dominant_heading(b - 3, c + 2), Some("B"));
        assert_eq!(o.dominant_heading(0, b + 2), Some("A"));
        assert_eq!(o.dominant_heading(c, text.len()), Some("C"));
        let none = outline("intro text that is long\n# A\nx\n");
        assert_eq!(none.dominant_heading(0, 30), None);
    }

    #[test]
    fn setext_headings() {
        let text = "Title\n=====\n\npara\n\nSub part\n--------\nbody\n";
        let paths: Vec<String> = headings(text).into_iter().map(|(_, p)| p).collect();
        assert_eq!(paths, ["Title", "Title > Sub part"]);
        assert_eq!(headings(text)[1].0, text.find("Sub part").expect("found"));
    }

    #[test]
    fn not_headings() {
        let text =
            "#hashtag\n    # indented code\n```\n# in code\n```\n- item\n---\n####### seven\n";
        assert!(headings(text).is_empty(), "{:?}", headings(text));
        let front = "---\ntitle: x\n---\n# Real\n";
        let paths: Vec<String> = headings(front).into_iter().map(|(_, p)| p).collect();
        assert_eq!(paths, ["Real"]);
    }

    #[test]
    fn closing_hashes() {
        assert_eq!(atx_heading("## A ##"), Some((2, "A")));
        assert_eq!(atx_heading("# C#"), Some((1, "C#")));
        assert_eq!(atx_heading("#"), Some((1, "")));
        assert_eq!(atx_heading("#5"), None);
    }

    #[test]
    fn root_title() {
        let o = outline("# Handbook\nx\n## Leave\ny\n").with_root("Handbook");
        assert_eq!(o.paths, ["Handbook", "Handbook > Leave"]);
        let o = outline("text\n## Leave\ny\n").with_root("Site");
        assert_eq!(o.paths, ["Site", "Site > Leave"]);
        assert_eq!(o.dominant_heading(0, 1), Some("Site"));
    }
}
