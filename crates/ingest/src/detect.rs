//! Deciding what kind of document a set of bytes is: extension first,
//! then magic numbers, then the declared content type, then a look at the
//! bytes themselves.
//!
//! Owns the lists of known binary signatures and unsupported extensions.
//! It must never decode or parse the document beyond a bounded peek at
//! its bytes: detection runs before size-proportional work.

use crate::{DocumentKind, IngestError};

/// What the leading bytes say, independent of the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Pdf,
    /// A non-text format (image, archive, executable): `binary_content`.
    Binary(&'static str),
    /// An office-style document we cannot read: `unsupported_type`, since
    /// the uploader likely expected it to work and should convert it.
    Document(&'static str),
}

/// Decides the document kind; see the module docs for the order of
/// evidence. Zero bytes are refused here so callers get `empty_document`
/// rather than a guess.
pub fn detect_kind(
    path: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<DocumentKind, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::empty(path));
    }
    let ext = extension(path);
    if let Some(ext) = ext.as_deref() {
        if let Some(desc) = unsupported_extension(ext) {
            return Err(IngestError::unsupported(path, format!("{desc} (.{ext})")));
        }
    }
    match sniff(bytes) {
        Some(Sniffed::Pdf) => return Ok(DocumentKind::Pdf),
        Some(Sniffed::Binary(what)) => return Err(IngestError::binary(path, what)),
        Some(Sniffed::Document(what)) => return Err(IngestError::unsupported(path, what)),
        None => {}
    }
    if let Some(kind) = ext.as_deref().and_then(kind_for_extension) {
        return Ok(kind);
    }
    if let Some(hint) = content_type.and_then(kind_for_content_type) {
        return hint.map_err(|what| IngestError::unsupported(path, what));
    }
    if bytes.contains(&0) && !has_utf16_bom(bytes) {
        return Err(IngestError::binary(
            path,
            "a binary file (it contains NUL bytes)",
        ));
    }
    if looks_like_html(bytes) {
        return Ok(DocumentKind::Html);
    }
    Ok(DocumentKind::Text)
}

/// Lower-cased extension of the last path segment; dot-files such as
/// `.env` have none. URLs are accepted so callers can pass a source URL.
pub(crate) fn extension(path: &str) -> Option<String> {
    let path = if path.contains("://") {
        path.split(['?', '#']).next().unwrap_or(path)
    } else {
        path
    };
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let dot = name.rfind('.')?;
    let ext = &name[dot + 1..];
    (dot > 0 && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn kind_for_extension(ext: &str) -> Option<DocumentKind> {
    Some(match ext {
        "md" | "markdown" | "mdown" | "mkd" => DocumentKind::Markdown,
        "txt" | "text" | "log" => DocumentKind::Text,
        "html" | "htm" | "xhtml" => DocumentKind::Html,
        "pdf" => DocumentKind::Pdf,
        "csv" | "tsv" => DocumentKind::Csv,
        _ => return None,
    })
}

fn unsupported_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "docx" | "docm" | "dotx" | "doc" => "a Word document",
        "xlsx" | "xlsm" | "xls" => "an Excel workbook",
        "pptx" | "ppt" => "a PowerPoint presentation",
        "odt" | "ods" | "odp" => "an OpenDocument file",
        "pages" | "numbers" | "key" => "an Apple iWork document",
        "rtf" => "a Rich Text Format document",
        "epub" | "mobi" => "an e-book",
        "png" | "jpg" | "jpeg" | "gif" | "bmp" | "webp" | "tif" | "tiff" | "heic" | "ico"
        | "svg" => "an image",
        "mp3" | "wav" | "m4a" | "ogg" | "flac" | "aac" => "an audio file",
        "mp4" | "mov" | "avi" | "mkv" | "webm" => "a video",
        "zip" | "gz" | "tgz" | "tar" | "7z" | "rar" | "bz2" | "xz" | "zst" => "an archive",
        "exe" | "dll" | "so" | "dylib" | "msi" | "dmg" | "iso" | "apk" | "jar" | "class"
        | "wasm" | "o" | "bin" => "an executable or binary file",
        "sqlite" | "db" => "a database file",
        _ => return None,
    })
}

/// `Some(Ok(kind))` for types we read, `Some(Err(description))` for types
/// we know we cannot, `None` when the hint says nothing useful (such as
/// `application/octet-stream`).
fn kind_for_content_type(content_type: &str) -> Option<Result<DocumentKind, String>> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let kind = match essence.as_str() {
        "text/markdown" | "text/x-markdown" => DocumentKind::Markdown,
        "text/html" | "application/xhtml+xml" => DocumentKind::Html,
        "application/pdf" | "application/x-pdf" => DocumentKind::Pdf,
        "text/csv" | "application/csv" | "text/x-csv" | "text/tab-separated-values" => {
            DocumentKind::Csv
        }
        e if e.starts_with("text/") => DocumentKind::Text,
        e if e.starts_with("image/")
            || e.starts_with("audio/")
            || e.starts_with("video/")
            || e.starts_with("application/vnd.")
            || e == "application/msword"
            || e == "application/zip"
            || e == "application/gzip" =>
        {
            return Some(Err(format!("of type {essence}")));
        }
        _ => return None,
    };
    Some(Ok(kind))
}

pub(crate) fn has_utf16_bom(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF])
}

/// Recognises formats by their leading bytes. Signatures that could also
/// start ordinary text (such as `MZ`) demand extra evidence so a note that
/// happens to begin with those letters is not refused.
pub(crate) fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    use Sniffed::{Binary, Document};
    // Only leading whitespace may precede the PDF header here: a text file
    // that merely mentions "%PDF-" must stay text. (A `.pdf` name routes to
    // the PDF reader anyway, which tolerates junk before the header.)
    let lead = bytes
        .iter()
        .take(1024)
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if bytes[lead..].starts_with(b"%PDF-") {
        return Some(Sniffed::Pdf);
    }
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    let at = |offset: usize, sig: &[u8]| bytes.get(offset..offset + sig.len()) == Some(sig);
    let found = if starts(b"\x89PNG\r\n\x1a\n") {
        Binary("a PNG image")
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Binary("a JPEG image")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Binary("a GIF image")
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        Binary("a WebP image")
    } else if starts(b"RIFF") && (at(8, b"WAVE") || at(8, b"AVI ")) {
        Binary("an audio or video file")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Binary("a TIFF image")
    } else if at(4, b"ftyp") {
        Binary("a video or HEIC image")
    } else if starts(b"OggS") || starts(b"fLaC") || (starts(b"ID3") && bytes.get(3) < Some(&10)) {
        Binary("an audio file")
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Some(zip_flavour(bytes));
    } else if starts(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Document("a legacy Microsoft Office document (.doc, .xls or .ppt)")
    } else if starts(b"{\\rtf") {
        Document("a Rich Text Format document")
    } else if starts(b"\x7FELF") {
        Binary("an ELF executable")
    } else if starts(b"MZ") && bytes.len() >= 64 && bytes[..64].contains(&0) {
        Binary("a Windows executable")
    } else if starts(&[0xCF, 0xFA, 0xED, 0xFE])
        || starts(&[0xCE, 0xFA, 0xED, 0xFE])
        || starts(&[0xCA, 0xFE, 0xBA, 0xBE])
    {
        Binary("a compiled executable")
    } else if starts(b"\0asm") {
        Binary("a WebAssembly module")
    } else if starts(&[0x1F, 0x8B]) {
        Binary("a gzip archive")
    } else if starts(b"BZh") && at(4, &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59]) {
        Binary("a bzip2 archive")
    } else if starts(b"\xFD7zXZ\0") {
        Binary("an xz archive")
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        Binary("a 7-Zip archive")
    } else if starts(b"Rar!\x1A\x07") {
        Binary("a RAR archive")
    } else if starts(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Binary("a zstd archive")
    } else if starts(b"SQLite format 3\0") {
        Binary("an SQLite database")
    } else {
        return None;
    };
    Some(found)
}

/// Office Open XML, OpenDocument and EPUB files are zip archives; name the
/// real format so the user knows what to convert. Entry names sit in local
/// headers near the start and in the central directory at the end, so
/// peeking at both ends is enough without unpacking anything.
fn zip_flavour(bytes: &[u8]) -> Sniffed {
    const PEEK: usize = 256 * 1024;
    let head = &bytes[..bytes.len().min(PEEK)];
    let tail = &bytes[bytes.len().saturating_sub(PEEK)..];
    let has = |needle: &[u8]| find(head, needle).is_some() || find(tail, needle).is_some();
    if has(b"word/") {
        Sniffed::Document("a Word document (.docx)")
    } else if has(b"xl/") {
        Sniffed::Document("an Excel workbook (.xlsx)")
    } else if has(b"ppt/") {
        Sniffed::Document("a PowerPoint presentation (.pptx)")
    } else if has(b"application/vnd.oasis.opendocument") {
        Sniffed::Document("an OpenDocument file")
    } else if has(b"application/epub+zip") {
        Sniffed::Document("an e-book (.epub)")
    } else {
        Sniffed::Binary("a ZIP archive")
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    [&b"<!doctype html"[..], b"<html", b"<head", b"<body"]
        .iter()
        .any(|tag| head.len() >= tag.len() && head[..tag.len()].eq_ignore_ascii_case(tag))
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(path: &str, ct: Option<&str>, bytes: &[u8]) -> &'static str {
        detect_kind(path, ct, bytes)
            .expect_err("should be refused")
            .code()
    }

    #[test]
    fn extensions_decide_first() {
        let cases = [
            ("a.md", DocumentKind::Markdown),
            ("dir/B.MARKDOWN", DocumentKind::Markdown),
            ("notes.txt", DocumentKind::Text),
            ("server.log", DocumentKind::Text),
            ("page.htm", DocumentKind::Html),
            ("page.html", DocumentKind::Html),
            ("data.csv", DocumentKind::Csv),
            ("data.tsv", DocumentKind::Csv),
            ("C:\\docs\\x.pdf", DocumentKind::Pdf),
        ];
        for (path, kind) in cases {
            assert_eq!(
                detect_kind(path, Some("application/octet-stream"), b"hello").expect("kind"),
                kind,
                "{path}"
            );
        }
    }

    #[test]
    fn extension_parsing() {
        assert_eq!(extension("a/b/c.TXT").as_deref(), Some("txt"));
        assert_eq!(extension(".env"), None);
        assert_eq!(extension("README"), None);
        assert_eq!(extension("dir.d/README"), None);
        assert_eq!(extension("trailing."), None);
        assert_eq!(
            extension("https://x.test/a/report.pdf?dl=1").as_deref(),
            Some("pdf")
        );
    }

    #[test]
    fn content_type_is_a_hint_without_extension() {
        let d = |ct| detect_kind("upload", Some(ct), b"x,y\n1,2\n").expect("kind");
        assert_eq!(d("text/csv; charset=utf-8"), DocumentKind::Csv);
        assert_eq!(d("text/markdown"), DocumentKind::Markdown);
        assert_eq!(d("TEXT/HTML"), DocumentKind::Html);
        assert_eq!(d("text/plain"), DocumentKind::Text);
        assert_eq!(d("application/octet-stream"), DocumentKind::Text);
        assert_eq!(
            code("upload", Some("image/png"), b"abc"),
            "unsupported_type"
        );
        // The extension outranks a conflicting hint.
        assert_eq!(
            detect_kind("a.md", Some("text/html"), b"# x").expect("kind"),
            DocumentKind::Markdown
        );
    }

    #[test]
    fn unknown_extension_text_is_text_and_html_is_sniffed() {
        assert_eq!(
            detect_kind("config.yaml", None, b"a: 1\n").expect("kind"),
            DocumentKind::Text
        );
        assert_eq!(
            detect_kind("README", None, b"plain words").expect("kind"),
            DocumentKind::Text
        );
        assert_eq!(
            detect_kind("page", None, b"\n  <!DOCTYPE html><html></html>").expect("kind"),
            DocumentKind::Html
        );
    }

    #[test]
    fn pdf_magic_wins() {
        assert_eq!(
            detect_kind("scan", None, b"%PDF-1.4\n...").expect("kind"),
            DocumentKind::Pdf
        );
        assert_eq!(
            detect_kind("misnamed.txt", None, b"\r\n%PDF-1.7\n").expect("kind"),
            DocumentKind::Pdf
        );
        // A .pdf without the header is still routed to the PDF reader,
        // which reports it as malformed.
        assert_eq!(
            detect_kind("x.pdf", None, b"not really").expect("kind"),
            DocumentKind::Pdf
        );
    }

    #[test]
    fn binary_signatures() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(code("photo.png", None, png), "unsupported_type");
        assert_eq!(code("photo", None, png), "binary_content");
        assert_eq!(code("notes.txt", None, png), "binary_content");
        assert_eq!(code("x", None, b"\xFF\xD8\xFF\xE0rest"), "binary_content");
        assert_eq!(code("x", None, b"GIF89a...."), "binary_content");
        assert_eq!(code("x", None, b"\x7FELF\x02\x01\x01"), "binary_content");
        assert_eq!(code("x", None, b"\x1F\x8B\x08\0"), "binary_content");
        assert_eq!(code("x", None, b"PK\x03\x04plain.bin"), "binary_content");
        assert_eq!(code("tool.exe", None, b"MZ"), "unsupported_type");
        assert_eq!(code("x", None, b"abc\0def"), "binary_content");
        let err = detect_kind("x", None, b"\x7FELF").expect_err("refused");
        assert!(err.to_string().contains("ELF executable"), "{err}");
    }

    #[test]
    fn text_starting_like_a_signature_is_still_text() {
        assert_eq!(
            detect_kind("x", None, b"MZ is a postcode prefix").expect("kind"),
            DocumentKind::Text
        );
        assert_eq!(
            detect_kind("x", None, b"ID3 tags explained").expect("kind"),
            DocumentKind::Text
        );
    }

    #[test]
    fn office_zips_are_named() {
        let mut docx = b"PK\x03\x04\x14\0\0\0[Content_Types].xml".to_vec();
        docx.extend_from_slice(b"PK\x03\x04word/document.xml");
        assert_eq!(code("report.docx", None, &docx), "unsupported_type");
        let err = detect_kind("upload", None, &docx).expect_err("refused");
        assert_eq!(err.code(), "unsupported_type");
        assert!(err.to_string().contains("Word document"), "{err}");
        assert!(err.to_string().contains("PDF (.pdf)"), "{err}");
        let xlsx = b"PK\x03\x04....xl/workbook.xml".to_vec();
        let err = detect_kind("upload", None, &xlsx).expect_err("refused");
        assert!(err.to_string().contains("Excel"), "{err}");
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(code("a.md", None, b""), "empty_document");
    }
}
