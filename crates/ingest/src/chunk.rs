//! Splitting extracted text into overlapping, size-bounded spans with exact
//! char offsets and line numbers.
//!
//! Format-agnostic: callers pass the text plus "section" starts (headings,
//! pages, CSV rows) where a cut is preferred and overlap is pointless. It
//! must never copy or rescan the text per chunk beyond a bounded window:
//! everything here is linear in the document size.

/// A point in the text: byte offset, char offset and the 1-based line of
/// the char at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub byte: usize,
    pub ch: u64,
    pub line: u32,
}

/// One chunk's extent. `end` is exclusive; because spans never end in
/// whitespace, `end.line` is also the line of the span's last char.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: Pos,
    pub end: Pos,
}

/// Cut preferences, weakest first. A stronger kind of cut anywhere in the
/// acceptable window beats a weaker one nearer the target size.
const HARD: usize = 0;
const WORD: usize = 1;
const SENTENCE: usize = 2;
const LINE: usize = 3;
const PARAGRAPH: usize = 4;
const SECTION: usize = 5;

/// Splits `text` into spans of about `target` chars (at most 1.5x), each
/// starting about `overlap` chars before the previous one ended unless the
/// previous cut was at a section start. `sections` must be sorted byte
/// offsets on char boundaries.
pub(crate) fn split(text: &str, sections: &[usize], target: usize, overlap: usize) -> Vec<Span> {
    let target = target.max(1);
    let mut splitter = Splitter {
        text,
        sections,
        target: target as u64,
        max: (target + target / 2) as u64,
        overlap: overlap as u64,
        starts: Vec::new(),
    };
    let mut spans = Vec::new();
    let mut cur = splitter.skip_whitespace(Pos {
        byte: 0,
        ch: 0,
        line: 1,
    });
    while cur.byte < text.len() {
        let (span, next) = splitter.next_span(cur);
        spans.push(span);
        match next {
            Some(next) => cur = splitter.skip_whitespace(next),
            None => break,
        }
    }
    spans
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Where the cut falls (start of the text after it).
    at: Pos,
    /// End of the chunk with trailing whitespace dropped.
    trimmed: Pos,
    /// Chars between the chunk start and `at`.
    len: u64,
}

#[derive(Debug, Clone, Copy)]
struct StartCandidate {
    pos: Pos,
    strength: usize,
}

/// The best cut offered so far for each kind: the one nearest the target
/// length, among those long enough for that kind.
struct Cuts {
    best: [Option<Cut>; SECTION + 1],
    target: u64,
    min_len: u64,
    min_section_len: u64,
}

impl Cuts {
    fn new(target: u64) -> Self {
        Self {
            best: [None; SECTION + 1],
            target,
            // Sections get a lower floor: a heading a quarter of the way in
            // is still worth a short chunk rather than a mixed one.
            min_len: (target / 2).max(1),
            min_section_len: (target / 4).max(1),
        }
    }

    fn offer(&mut self, kind: usize, cut: Cut) {
        let floor = if kind == SECTION {
            self.min_section_len
        } else {
            self.min_len
        };
        if cut.len < floor {
            return;
        }
        let target = self.target;
        let slot = &mut self.best[kind];
        if slot.is_none_or(|b| cut.len.abs_diff(target) < b.len.abs_diff(target)) {
            *slot = Some(cut);
        }
    }

    /// Strongest kind wins; within a kind, nearest the target.
    fn strongest(&self) -> Option<(usize, Cut)> {
        (HARD..=SECTION)
            .rev()
            .find_map(|kind| self.best[kind].map(|c| (kind, c)))
    }
}

struct Splitter<'a> {
    text: &'a str,
    sections: &'a [usize],
    target: u64,
    max: u64,
    overlap: u64,
    /// Reused between chunks: word and sentence starts seen while walking,
    /// where the next chunk may begin.
    starts: Vec<StartCandidate>,
}

impl Splitter<'_> {
    fn skip_whitespace(&self, mut pos: Pos) -> Pos {
        for c in self.text[pos.byte..].chars() {
            if !c.is_whitespace() {
                break;
            }
            pos.byte += c.len_utf8();
            pos.ch += 1;
            if c == '\n' {
                pos.line = pos.line.saturating_add(1);
            }
        }
        pos
    }

    /// Finds the chunk starting at `start` (a non-whitespace char) and where
    /// the following chunk should begin, or `None` if this is the last.
    ///
    /// This loop is the hot path of ingestion: it touches each char about
    /// twice per document, so per-char work is kept to a few comparisons
    /// and cut candidates are only considered where whitespace begins.
    fn next_span(&mut self, start: Pos) -> (Span, Option<Pos>) {
        self.starts.clear();
        let mut cuts = Cuts::new(self.target);
        let bytes = self.text.as_bytes();
        let mut sec_i = self.sections.partition_point(|&s| s <= start.byte);
        let mut next_sec = self.sections.get(sec_i).copied().unwrap_or(usize::MAX);

        let mut i = start.byte;
        let mut k = 0u64;
        let mut line = start.line;
        let mut trimmed = start;
        let mut prev_ws = false;
        let mut line_blank = false;
        let mut after_cjk_stop = false;
        let (mut last, mut last2) = ('\0', '\0');
        let mut run_strength = WORD;
        let mut stopped: Option<Cut> = None;

        while i < bytes.len() {
            let here = Pos {
                byte: i,
                ch: start.ch + k,
                line,
            };
            let cut = Cut {
                at: here,
                trimmed,
                len: k,
            };
            if k == self.max {
                stopped = Some(cut);
                break;
            }
            if k == self.target {
                cuts.offer(HARD, cut);
            }
            if i >= next_sec {
                if i == next_sec && k > 0 {
                    cuts.offer(SECTION, cut);
                }
                while next_sec <= i {
                    sec_i += 1;
                    next_sec = self.sections.get(sec_i).copied().unwrap_or(usize::MAX);
                }
            }
            let b = bytes[i];
            let c = if b < 0x80 {
                char::from(b)
            } else {
                self.text[i..].chars().next().unwrap_or('\u{FFFD}')
            };
            if c.is_whitespace() {
                if !prev_ws {
                    run_strength = if ends_sentence(last, last2) {
                        SENTENCE
                    } else {
                        WORD
                    };
                }
                if c == '\n' {
                    let kind = if line_blank { PARAGRAPH } else { LINE };
                    cuts.offer(kind, cut);
                    if k > self.target && self.settled(&cuts, k, i, next_sec) {
                        stopped = Some(cut);
                        break;
                    }
                    line = line.saturating_add(1);
                    line_blank = true;
                    run_strength = SENTENCE;
                } else if !prev_ws {
                    cuts.offer(run_strength, cut);
                }
                prev_ws = true;
                after_cjk_stop = false;
            } else {
                if prev_ws {
                    self.starts.push(StartCandidate {
                        pos: here,
                        strength: run_strength,
                    });
                } else if after_cjk_stop {
                    // CJK sentences end without a following space.
                    cuts.offer(SENTENCE, cut);
                    self.starts.push(StartCandidate {
                        pos: here,
                        strength: SENTENCE,
                    });
                }
                after_cjk_stop = matches!(c, '。' | '！' | '？');
                last2 = last;
                last = c;
                line_blank = false;
                prev_ws = false;
                trimmed = Pos {
                    byte: i + c.len_utf8(),
                    ch: start.ch + k + 1,
                    line,
                };
            }
            i += c.len_utf8();
            k += 1;
        }

        let chosen = match stopped {
            // Walked to the end of the text: the rest fits in one chunk, and
            // only a section start is worth a cut, only if the rest is more
            // than one chunk's worth.
            None => cuts.best[SECTION]
                .filter(|_| trimmed.ch - start.ch > self.target)
                .map(|c| (SECTION, c)),
            Some(stop) => Some(cuts.strongest().unwrap_or((HARD, stop))),
        };
        let Some((kind, cut)) = chosen else {
            let span = Span {
                start,
                end: trimmed,
            };
            return (span, None);
        };
        let span = Span {
            start,
            end: cut.trimmed,
        };
        let next = if kind == SECTION || self.overlap == 0 {
            cut.at
        } else {
            self.overlap_start(start, cut)
        };
        (span, Some(next))
    }

    /// Whether walking on to `max` can no longer change the choice: the
    /// strongest cut so far is a paragraph or section, later ones of that
    /// kind would be further from the target, and no section start (nor
    /// the end of the text, which has its own rule) fits in the rest of the
    /// window. Prose stops well short of `max` this way.
    fn settled(&self, cuts: &Cuts, k: u64, byte: usize, next_section: usize) -> bool {
        let Some((kind, best)) = cuts.strongest() else {
            return false;
        };
        if kind < PARAGRAPH || k - self.target < best.len.abs_diff(self.target) {
            return false;
        }
        // A char takes at most 4 bytes, so this bounds the window's bytes.
        let reach = byte.saturating_add(4 * (self.max - k) as usize);
        (kind == SECTION || next_section > reach) && self.text.len() > reach
    }

    /// Picks where the next chunk begins so that it repeats about
    /// `overlap` chars, preferring a sentence or line start, then a word
    /// start, then simply `overlap` chars back. Never at or before `start`,
    /// so splitting always advances.
    fn overlap_start(&self, start: Pos, cut: Cut) -> Pos {
        let end = cut.trimmed.ch;
        let overlap = self.overlap.min((end - start.ch) / 2).max(1);
        let want = end - overlap;
        let lo = end.saturating_sub(overlap + overlap / 2).max(start.ch + 1);
        let hi = end - overlap / 2;
        let mut best: Option<StartCandidate> = None;
        for cand in &self.starts {
            let ch = cand.pos.ch;
            if ch < lo || ch > hi {
                continue;
            }
            let better = best.is_none_or(|b| {
                cand.strength > b.strength
                    || (cand.strength == b.strength && ch.abs_diff(want) < b.pos.ch.abs_diff(want))
            });
            if better {
                best = Some(*cand);
            }
        }
        match best {
            Some(b) => b.pos,
            None => self.back_chars(cut.trimmed, overlap, start.ch + 1),
        }
    }

    /// Steps back `n` chars from `pos`, but not before char `floor`.
    fn back_chars(&self, mut pos: Pos, n: u64, floor: u64) -> Pos {
        let bytes = self.text.as_bytes();
        let mut left = n;
        while left > 0 && pos.ch > floor && pos.byte > 0 {
            let mut b = pos.byte - 1;
            while b > 0 && bytes[b] & 0xC0 == 0x80 {
                b -= 1;
            }
            pos.byte = b;
            pos.ch -= 1;
            // A newline belongs to the line it ends, the one above.
            if bytes[b] == b'\n' {
                pos.line = pos.line.saturating_sub(1);
            }
            left -= 1;
        }
        pos
    }
}

fn ends_sentence(prev: char, prev2: char) -> bool {
    matches!(prev, '.' | '!' | '?' | '…')
        || (matches!(prev, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
            && matches!(prev2, '.' | '!' | '?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars_of(text: &str, span: &Span) -> String {
        let by_bytes = &text[span.start.byte..span.end.byte];
        let by_chars: String = text
            .chars()
            .skip(span.start.ch as usize)
            .take((span.end.ch - span.start.ch) as usize)
            .collect();
        assert_eq!(by_bytes, by_chars, "byte and char offsets disagree");
        by_bytes.to_owned()
    }

    fn line_of(text: &str, byte: usize) -> u32 {
        1 + text.as_bytes()[..byte]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u32
    }

    /// Checks every invariant a span list must satisfy and returns the texts.
    fn check(text: &str, spans: &[Span], target: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            let t = chars_of(text, s);
            assert!(!t.trim().is_empty(), "empty span {i}");
            assert_eq!(t, t.trim(), "span {i} not trimmed");
            assert!(
                t.chars().count() <= target + target / 2,
                "span {i} too long: {}",
                t.chars().count()
            );
            assert_eq!(s.start.line, line_of(text, s.start.byte), "line_start {i}");
            assert_eq!(s.end.line, line_of(text, s.end.byte - 1), "line_end {i}");
            if i > 0 {
                assert!(s.start.ch > spans[i - 1].start.ch, "no progress at {i}");
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn short_text_is_one_span() {
        let text = "  hello world \n";
        let spans = split(text, &[], 100, 20);
        assert_eq!(check(text, &spans, 100), ["hello world"]);
        assert_eq!(spans[0].start.ch, 2);
        assert_eq!(spans[0].end.ch, 13);
    }

    #[test]
    fn whitespace_only_gives_nothing() {
        assert!(split(" \n\t \n", &[], 100, 20).is_empty());
        assert!(split("", &[], 100, 20).is_empty());
    }

    #[test]
    fn paragraphs_are_preferred_cuts() {
        let para = |n: usize| format!("{}.", format!("word{n} ").repeat(12).trim_end());
        let text = (0..10).map(para).collect::<Vec<_>>().join("\n\n");
        let spans = split(&text, &[], 200, 0);
        let texts = check(&text, &spans, 200);
        assert!(texts.len() > 2);
        for t in &texts {
            assert!(t.starts_with("word") && t.ends_with('.'), "{t:?}");
        }
        // No overlap requested: spans tile the text exactly.
        let rejoined = texts.join("\n\n");
        assert_eq!(rejoined, text);
    }

    #[test]
    fn long_paragraph_splits_at_sentences_with_overlap() {
        let text = (0..200)
            .map(|i| format!("Sentence number {i} is here."))
            .collect::<Vec<_>>()
            .join(" ");
        let spans = split(&text, &[], 300, 60);
        let texts = check(&text, &spans, 300);
        assert!(texts.len() > 10);
        for (i, t) in texts.iter().enumerate() {
            assert!(t.starts_with("Sentence"), "{i}: {t:?}");
            assert!(t.ends_with('.'), "{i}: {t:?}");
        }
        for pair in spans.windows(2) {
            let shared = pair[0].end.ch.saturating_sub(pair[1].start.ch);
            assert!((20..=100).contains(&shared), "overlap {shared}");
        }
    }

    #[test]
    fn unbroken_text_is_cut_hard_but_bounded() {
        let text = "x".repeat(10_000);
        let spans = split(&text, &[], 1000, 100);
        let texts = check(&text, &spans, 1000);
        assert!(texts.iter().all(|t| !t.is_empty()));
        assert_eq!(spans.last().map(|s| s.end.ch), Some(10_000));
    }

    #[test]
    fn words_without_sentences_split_at_spaces() {
        let text = "lorem ipsum dolor sit amet ".repeat(400);
        let spans = split(&text, &[], 500, 80);
        for t in check(&text, &spans, 500) {
            let first = t.split(' ').next().unwrap_or("");
            assert!(
                ["lorem", "ipsum", "dolor", "sit", "amet"].contains(&first),
                "{t:?}"
            );
        }
    }

    #[test]
    fn sections_win_and_get_no_overlap() {
        let body = "Some body text that goes on. ".repeat(10);
        let text = format!("# A\n{body}\n# B\n{body}\n# C\n{body}");
        let sections: Vec<usize> = text.match_indices("# ").map(|(i, _)| i).collect();
        let spans = split(&text, &sections, 400, 100);
        let texts = check(&text, &spans, 400);
        assert_eq!(texts.len(), 3, "{texts:#?}");
        assert!(texts[1].starts_with("# B"));
        assert!(texts[2].starts_with("# C"));
        assert_eq!(spans[1].start.line, 3);
    }

    #[test]
    fn multibyte_offsets_are_in_chars() {
        let text = "日本語の文章です。".repeat(300);
        let spans = split(&text, &[], 100, 20);
        let texts = check(&text, &spans, 100);
        assert!(texts.iter().all(|t| t.ends_with('。')), "{texts:?}");
    }

    #[test]
    fn lines_are_tracked() {
        let text = (1..=300)
            .map(|i| format!("line {i} of the file"))
            .collect::<Vec<_>>()
            .join("\n");
        let spans = split(&text, &[], 250, 50);
        let texts = check(&text, &spans, 250);
        for (s, t) in spans.iter().zip(&texts) {
            let first: u32 = t
                .split(' ')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("starts at a line start");
            assert_eq!(first, s.start.line);
        }
    }

    #[test]
    fn tiny_targets_terminate() {
        let text = "a b c d e f g h i j k l m n o p";
        for target in [1, 2, 3] {
            for overlap in [0, 1, 5] {
                let spans = split(text, &[], target, overlap);
                check(text, &spans, target);
            }
        }
    }
}
