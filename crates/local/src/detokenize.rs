//! Streaming text out of a growing list of token ids without ever cutting a
//! character: a byte-level token may carry half of a UTF-8 sequence, so new
//! text is released only once it decodes whole.

use tokenizers::Tokenizer;

pub(crate) struct Detokenizer<'t> {
    tokenizer: &'t Tokenizer,
    tokens: Vec<u32>,
    /// Tokens already turned into released text.
    released: usize,
    /// Where the decoding window starts: decoding from a little before the
    /// released point keeps word joins (spaces) as the decoder makes them.
    window: usize,
}

impl<'t> Detokenizer<'t> {
    pub(crate) fn new(tokenizer: &'t Tokenizer) -> Self {
        Self {
            tokenizer,
            tokens: Vec::new(),
            released: 0,
            window: 0,
        }
    }

    fn decode(&self, range: std::ops::Range<usize>) -> String {
        self.tokenizer
            .decode(&self.tokens[range], false)
            .unwrap_or_default()
    }

    /// Adds a token; the text it completes, if any.
    pub(crate) fn push(&mut self, token: u32) -> Option<String> {
        self.tokens.push(token);
        let before = self.decode(self.window..self.released);
        let now = self.decode(self.window..self.tokens.len());
        if now.len() <= before.len() || now.ends_with('\u{FFFD}') || !now.starts_with(&before) {
            return None;
        }
        let delta = now[before.len()..].to_owned();
        self.window = self.released;
        self.released = self.tokens.len();
        Some(delta)
    }

    /// Whatever is still held back (an incomplete character at the end).
    pub(crate) fn finish(&mut self) -> Option<String> {
        let before = self.decode(self.window..self.released);
        let now = self.decode(self.window..self.tokens.len());
        self.released = self.tokens.len();
        now.strip_prefix(&before)
            .filter(|rest| !rest.is_empty())
            .map(str::to_owned)
    }
}
