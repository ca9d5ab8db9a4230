//! Every error code reachable through `parse`, with messages that name the
//! file and tell the user what to do.

use crate::common;

use roster_ingest::{parse, ChunkOptions, IngestError};

fn refuse(path: &str, content_type: Option<&str>, bytes: &[u8]) -> IngestError {
    refuse_with(path, content_type, bytes, &ChunkOptions::default())
}

fn refuse_with(
    path: &str,
    content_type: Option<&str>,
    bytes: &[u8],
    options: &ChunkOptions,
) -> IngestError {
    let err =
        parse(path, content_type, bytes, options).expect_err(&format!("{path} should be refused"));
    let msg = err.to_string();
    assert!(msg.contains(path), "message must name the file: {msg}");
    assert!(msg.ends_with('.'), "one sentence: {msg}");
    assert_eq!(msg.lines().count(), 1, "one line: {msg}");
    err
}

#[test]
fn document_too_large_before_parsing() {
    let options = ChunkOptions {
        max_bytes: 10,
        ..ChunkOptions::default()
    };
    // Even bytes that would fail detection report the size first.
    let err = refuse_with("big.png", None, &[0u8; 11], &options);
    assert_eq!(err.code(), "document_too_large");
    assert_eq!(
        err,
        IngestError::DocumentTooLarge {
            path: "big.png".into(),
            size: 11,
            limit: 10
        }
    );
    assert!(parse("ok.txt", None, b"0123456789", &options).is_ok());
}

#[test]
fn empty_document() {
    assert_eq!(refuse("a.txt", None, b"").code(), "empty_document");
    assert_eq!(refuse("a.md", None, b" \n\t\r\n ").code(), "empty_document");
    assert_eq!(refuse("a", None, b"\xEF\xBB\xBF").code(), "empty_document");
    let html = b"<html><head><script>x()</script></head><body> </body></html>";
    assert_eq!(refuse("a.html", None, html).code(), "empty_document");
    assert_eq!(
        refuse("a.csv", None, b"name,team\n").code(),
        "empty_document"
    );
    assert_eq!(
        refuse("b.csv", None, b"name,team\n,\n ,\n").code(),
        "empty_document"
    );
}

#[test]
fn binary_content() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let err = refuse("notes.txt", None, png);
    assert_eq!(err.code(), "binary_content");
    assert!(err.to_string().contains("PNG image"), "{err}");
    assert_eq!(refuse("upload", None, png).code(), "binary_content");
    assert_eq!(
        refuse("a.txt", None, b"text\0with nul").code(),
        "binary_content"
    );
    assert_eq!(
        refuse("run", None, b"\x7FELF\x02\x01\x01\0").code(),
        "binary_content"
    );
    assert_eq!(
        refuse("a.md", None, b"\x1F\x8B\x08\0\0\0").code(),
        "binary_content"
    );
    assert_eq!(
        refuse("a.pdf", None, b"GIF89a\x01\0").code(),
        "binary_content"
    );
}

#[test]
fn garbled_text() {
    let err = refuse("a.txt", None, b"\x01\x02\x03\x04\x05\x06 hello");
    assert_eq!(err.code(), "garbled_text");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    let noise: Vec<u8> = (0..4096u64)
        .map(|i| (i * 2_654_435_761 % 251) as u8 | 0x80)
        .collect();
    assert_eq!(refuse("a.txt", None, &noise).code(), "garbled_text");
    let mut bad_utf16 = vec![0xFF, 0xFE];
    for _ in 0..20 {
        bad_utf16.extend_from_slice(&0xDC00u16.to_le_bytes());
    }
    assert_eq!(refuse("u.txt", None, &bad_utf16).code(), "garbled_text");
}

#[test]
fn unsupported_type() {
    for path in [
        "report.docx",
        "photo.png",
        "setup.exe",
        "sheet.xlsx",
        "a.zip",
    ] {
        let err = refuse(path, None, b"PK\x03\x04whatever");
        assert_eq!(err.code(), "unsupported_type", "{path}");
        let msg = err.to_string();
        assert!(
            msg.contains("Markdown (.md)") && msg.contains("PDF (.pdf)"),
            "{msg}"
        );
    }
    let mut docx = b"PK\x03\x04\x14\0\x06\0[Content_Types].xml".to_vec();
    docx.extend_from_slice(b"PK\x03\x04\x14\0word/document.xml");
    let err = refuse("upload", None, &docx);
    assert_eq!(err.code(), "unsupported_type");
    assert!(err.to_string().contains("Word document"), "{err}");
    assert_eq!(
        refuse("upload", Some("image/jpeg"), b"xx").code(),
        "unsupported_type"
    );
}

#[test]
fn no_text() {
    let bytes = common::pdf(&[common::Page::Drawing]);
    let err = refuse("scan.pdf", None, &bytes);
    assert_eq!(err.code(), "no_text");
    assert!(err.to_string().contains("OCR"), "{err}");
}

#[test]
fn malformed_document() {
    let err = refuse("broken.pdf", None, b"%PDF-1.4\n1 0 obj\n<< /Type");
    assert_eq!(err.code(), "malformed_document");
    let err = refuse("data.csv", None, b"a,b\n1,2\n3,4,5\n");
    assert_eq!(err.code(), "malformed_document");
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = refuse("data.csv", None, b",\n1,2\n");
    assert_eq!(err.code(), "malformed_document");
    assert!(err.to_string().contains("header"), "{err}");
}
