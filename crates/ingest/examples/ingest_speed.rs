//! Prints parse-and-chunk throughput (MB/s of input) for each text-based
//! kind on generated input. Run with `--release`; debug numbers are
//! meaningless. Measures only; it must never assert on timings, since
//! machines differ.

use std::time::Instant;

use roster_ingest::{parse, ChunkOptions};

const TARGET_BYTES: usize = 20 * 1024 * 1024;

/// Deterministic pseudo-random sentences so runs are comparable.
struct Words {
    state: u64,
}

impl Words {
    const LIST: [&'static str; 16] = [
        "policy",
        "employee",
        "leave",
        "the",
        "of",
        "manager",
        "approval",
        "résumé",
        "über",
        "salary",
        "benefit",
        "and",
        "to",
        "a",
        "quarterly",
        "review",
    ];

    fn sentence(&mut self, out: &mut String) {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = 5 + (self.state >> 60) as usize;
        for i in 0..len {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            if i > 0 {
                out.push(' ');
            }
            out.push_str(Self::LIST[(self.state >> 33) as usize % Self::LIST.len()]);
        }
        out.push_str(". ");
    }
}

fn text() -> String {
    let mut w = Words { state: 1 };
    let mut out = String::with_capacity(TARGET_BYTES + 1024);
    let mut line = 0;
    while out.len() < TARGET_BYTES {
        w.sentence(&mut out);
        line += 1;
        if line % 3 == 0 {
            out.push('\n');
        }
        if line % 12 == 0 {
            out.push('\n');
        }
    }
    out
}

fn markdown() -> String {
    let mut w = Words { state: 2 };
    let mut out = String::with_capacity(TARGET_BYTES + 1024);
    let mut n = 0;
    while out.len() < TARGET_BYTES {
        n += 1;
        let level = 1 + n % 3;
        out.push_str(&format!("{} Heading {n}\n\n", "#".repeat(level)));
        for _ in 0..4 {
            for _ in 0..4 {
                w.sentence(&mut out);
            }
            out.push_str("\n\n");
        }
    }
    out
}

fn html() -> String {
    let mut w = Words { state: 3 };
    let mut out = String::from("<html><head><title>Speed</title><style>p{}</style></head><body>\n");
    let mut n = 0;
    while out.len() < TARGET_BYTES {
        n += 1;
        out.push_str(&format!("<h2>Heading {n}</h2>\n"));
        for _ in 0..4 {
            out.push_str("<p>");
            for _ in 0..4 {
                w.sentence(&mut out);
            }
            out.push_str("<a href=\"/x\">link</a></p>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn csv() -> String {
    let mut w = Words { state: 4 };
    let mut out = String::from("id,name,department,notes\n");
    let mut id = 0;
    while out.len() < TARGET_BYTES {
        id += 1;
        out.push_str(&format!("{id},Person {id},Dept {},\"", id % 17));
        w.sentence(&mut out);
        out.push_str("\"\n");
    }
    out
}

fn main() {
    let options = ChunkOptions::default();
    type Generator = fn() -> String;
    let inputs: [(&str, &str, Generator); 4] = [
        ("text", "speed.txt", text),
        ("markdown", "speed.md", markdown),
        ("html", "speed.html", html),
        ("csv", "speed.csv", csv),
    ];
    for (kind, path, make) in inputs {
        let input = make();
        let started = Instant::now();
        let doc = match parse(path, None, input.as_bytes(), &options) {
            Ok(doc) => doc,
            Err(e) => {
                eprintln!("{kind}: {e}");
                std::process::exit(1);
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let mb = input.len() as f64 / 1_000_000.0;
        println!(
            "{kind:>8}: {mb:6.1} MB in {secs:6.3} s = {:7.1} MB/s ({} chunks)",
            mb / secs,
            doc.chunks.len()
        );
    }
}
