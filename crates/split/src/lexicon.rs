//! Code tables from mappings/: parsed and validated once, then shared by
//! every extraction. The built-in tables are compiled in; a site can load its
//! own copies (same format) at start-up with [`Lexicon::parse`].

/// A mapping file that cannot be used, naming the file and the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// All code tables the extractor needs.
#[derive(Debug)]
pub struct Lexicon {}

impl Lexicon {
    /// The tables shipped in mappings/, compiled into the binary.
    pub fn builtin() -> Lexicon {
        Lexicon {}
    }
}
