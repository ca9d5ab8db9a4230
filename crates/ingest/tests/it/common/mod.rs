//! Builders for test inputs that would otherwise be binary fixtures.
//!
//! Everything is generated in code so the repository holds no opaque
//! files; helpers here must stay deterministic.

#![allow(dead_code)]

/// What a generated PDF page holds.
pub enum Page<'a> {
    /// Lines of text drawn top-down in Helvetica.
    Text(&'a [&'a str]),
    /// A content stream that only paints a rectangle, like a scanned image
    /// would carry no text operators.
    Drawing,
    /// A page object with no content stream at all.
    Blank,
}

/// A minimal, valid PDF 1.4 file with one page per entry. Object offsets
/// in the xref table are computed from the bytes actually written.
pub fn pdf(pages: &[Page<'_>]) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, 3 font, then per page: page (+ content).
    let mut objects: Vec<String> = Vec::new();
    let mut kids = Vec::new();
    let mut next_id = 4;
    let mut page_objects = Vec::new();
    for page in pages {
        let page_id = next_id;
        next_id += 1;
        kids.push(format!("{page_id} 0 R"));
        let content = match page {
            Page::Text(lines) => Some(text_stream(lines)),
            Page::Drawing => Some("0.5 g 72 72 200 200 re f".to_owned()),
            Page::Blank => None,
        };
        let contents_ref = match &content {
            Some(stream) => {
                let id = next_id;
                next_id += 1;
                page_objects.push((
                    id,
                    format!(
                        "<< /Length {} >>\nstream\n{stream}\nendstream",
                        stream.len()
                    ),
                ));
                format!(" /Contents {id} 0 R")
            }
            None => String::new(),
        };
        page_objects.push((
            page_id,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >>{contents_ref} >>"
            ),
        ));
    }
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".to_owned());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    );
    page_objects.sort_by_key(|(id, _)| *id);
    objects.extend(page_objects.into_iter().map(|(_, body)| body));

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref_at = out.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        xref.push_str(&format!("{off:010} 00000 n \n"));
    }
    out.extend_from_slice(xref.as_bytes());
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn text_stream(lines: &[&str]) -> String {
    let mut s = String::from("BT\n/F1 12 Tf\n14 TL\n72 740 Td\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        s.push_str(&format!("({escaped}) Tj T*\n"));
    }
    s.push_str("ET");
    s
}

/// Char-offset slice, the way a consumer holding only `Location` would
/// cut the extracted text.
pub fn char_slice(text: &str, start: u64, end: u64) -> String {
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}
