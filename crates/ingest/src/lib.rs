//! Turns uploaded company documents (Markdown, plain text, HTML, PDF, CSV)
//! into citable text chunks for the knowledge index.
//!
//! The crate root only declares modules and the public surface. Nothing in
//! this crate performs I/O, spawns threads or touches global state (such
//! as the panic hook): callers hand in bytes and get data back, so it can
//! run anywhere, including inside async tasks via `spawn_blocking`.
//!
//! ```
//! use roster_ingest::{parse, ChunkOptions, DocumentKind};
//!
//! let doc = parse("handbook.md", None, b"# Leave\nTake it.\n", &ChunkOptions::default())
//!     .expect("parses");
//! assert_eq!(doc.kind, DocumentKind::Markdown);
//! assert_eq!(doc.chunks[0].location.cite(), "lines 1-2 (§ Leave)");
//! ```

mod chunk;
mod csv;
mod detect;
mod error;
mod html;
mod markdown;
mod markup;
mod model;
mod parse;
mod pdf;
mod text;

pub use detect::detect_kind;
pub use error::IngestError;
pub use model::{Chunk, ChunkOptions, DocumentKind, Location, ParsedDocument};
pub use parse::{content_hash, parse};
