//! Turning raw bytes into a `String`: BOM handling, UTF-16, a careful
//! Windows-1252 fallback, newline normalisation and the "is this garbage?"
//! check shared by every kind.
//!
//! It must never guess an encoding for content that does not look like
//! text: a wrong guess silently indexes mojibake, which is worse than a
//! clear refusal.

use crate::IngestError;

/// Above this share of control or replacement characters, text is refused.
const MAX_BAD_PER_MILLE: usize = 100;
/// Latin-script prose stays far below this share of bytes >= 0x80; binary
/// data sits near one half.
const MAX_HIGH_BYTES_PERCENT: usize = 30;

/// Decodes a text-based upload. Line endings come back as `\n` only, so
/// line numbers mean the same thing whatever system wrote the file.
pub(crate) fn decode(path: &str, bytes: &[u8]) -> Result<String, IngestError> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        decode_8bit(path, rest)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        decode_utf16(encoding_rs::UTF_16LE, rest)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        decode_utf16(encoding_rs::UTF_16BE, rest)
    } else {
        decode_8bit(path, bytes)?
    };
    let text = normalize_newlines(text);
    check_garbled(path, &text)?;
    Ok(text)
}

fn decode_utf16(encoding: &'static encoding_rs::Encoding, bytes: &[u8]) -> String {
    // Malformed surrogates become U+FFFD, which `check_garbled` weighs.
    let (text, _had_errors) = encoding.decode_without_bom_handling(bytes);
    text.into_owned()
}

fn decode_8bit(path: &str, bytes: &[u8]) -> Result<String, IngestError> {
    if bytes.contains(&0) {
        return Err(IngestError::binary(
            path,
            "a binary file (it contains NUL bytes)",
        ));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let mut invalid = 0usize;
    let mut multibyte = 0usize;
    for chunk in bytes.utf8_chunks() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += usize::from(!chunk.invalid().is_empty());
    }
    // Real UTF-8 with a few damaged bytes (a truncated download, one pasted
    // Latin-1 word) reads far better lossily than re-decoded as 1252.
    if multibyte >= invalid {
        return Ok(String::from_utf8_lossy(bytes).into_owned());
    }
    let high = bytes.iter().filter(|b| **b >= 0x80).count();
    if high * 100 > bytes.len() * MAX_HIGH_BYTES_PERCENT {
        return Err(IngestError::garbled(
            path,
            "it is not valid UTF-8 and does not look like text in another encoding",
        ));
    }
    let (text, _had_errors) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
}

fn normalize_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Refuses text in which more than a tenth of the characters are control
/// characters (other than tab, newline, carriage return and form feed) or
/// U+FFFD replacement characters.
pub(crate) fn check_garbled(path: &str, text: &str) -> Result<(), IngestError> {
    let (chars, bad) = count_bad_chars(text);
    if bad * 1000 > chars * MAX_BAD_PER_MILLE {
        return Err(IngestError::garbled(
            path,
            format!("{bad} of its {chars} characters are control or replacement characters"),
        ));
    }
    Ok(())
}

/// Works on UTF-8 bytes rather than `chars()` because this runs over every
/// document and the byte patterns of the few characters we look for are
/// fixed: C1 controls are `C2 80..=9F`, U+FFFD is `EF BF BD`.
fn count_bad_chars(text: &str) -> (usize, usize) {
    let b = text.as_bytes();
    let mut chars = 0usize;
    let mut bad = 0usize;
    for (i, &byte) in b.iter().enumerate() {
        if byte & 0xC0 != 0x80 {
            chars += 1;
        }
        let is_bad = match byte {
            b'\t' | b'\n' | b'\r' | 0x0C => false,
            0x00..=0x1F | 0x7F => true,
            0xC2 => matches!(b.get(i + 1), Some(0x80..=0x9F)),
            0xEF => b.get(i + 1..i + 3) == Some(&[0xBF, 0xBD][..]),
            _ => false,
        };
        bad += usize::from(is_bad);
    }
    (chars, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> &'static str {
        decode("f.txt", bytes).expect_err("refused").code()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode("f", "héllo".as_bytes()).expect("ok"), "héllo");
        assert_eq!(decode("f", b"\xEF\xBB\xBFhi").expect("ok"), "hi");
    }

    #[test]
    fn utf16_with_bom() {
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in "Grüße\r\nzwei".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode("f", &le).expect("le"), "Grüße\nzwei");
        assert_eq!(decode("f", &be).expect("be"), "Grüße\nzwei");
    }

    #[test]
    fn windows_1252_when_it_looks_like_text() {
        // "café – naïve" in cp1252: é=E9, en dash=96, ï=EF.
        let bytes = b"caf\xE9 \x96 na\xEFve people";
        assert_eq!(decode("f", bytes).expect("ok"), "café – naïve people");
    }

    #[test]
    fn mostly_utf8_is_decoded_lossily() {
        let bytes = "naïve résumé, déjà vu \u{2014} ".bytes().chain([0xFF]);
        let bytes: Vec<u8> = bytes.collect();
        let text = decode("f", &bytes).expect("ok");
        assert!(text.starts_with("naïve résumé"), "{text}");
        assert!(text.ends_with('\u{FFFD}'), "{text}");
    }

    #[test]
    fn newlines_are_normalised() {
        assert_eq!(decode("f", b"a\r\nb\rc\n").expect("ok"), "a\nb\nc\n");
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(code(b"a\0b"), "binary_content");
        let high: Vec<u8> = (0..200u8).map(|i| 0x80 | (i % 0x7F)).collect();
        assert_eq!(code(&high), "garbled_text");
        assert_eq!(code(b"\x01\x02\x03\x04 hi"), "garbled_text");
        let mostly_replacement = "\u{FFFD}\u{FFFD}ab".as_bytes();
        assert_eq!(code(mostly_replacement), "garbled_text");
        let c1 = "\u{85}\u{85}ab".as_bytes();
        assert_eq!(code(c1), "garbled_text");
    }

    #[test]
    fn a_few_controls_are_tolerated() {
        let mut s = "x".repeat(100);
        s.push_str("\x1b[31mred\x1b[0m\x0C");
        assert!(decode("f", s.as_bytes()).is_ok());
    }

    #[test]
    fn counts_chars_and_bad_chars() {
        assert_eq!(count_bad_chars("aé\u{FFFD}\u{85}\t\x07"), (6, 3));
    }
}
