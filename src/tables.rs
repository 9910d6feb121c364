//! Loading a site's own copies of the mapping tables at start-up. The built-in
//! tables (mappings/ compiled in) are the default; a directory given with
//! `--mappings` replaces any table it holds, file by file.

use std::path::{Path, PathBuf};

use reportsplit_split::{Lexicon, MappingError, MappingFiles};

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid mapping table: {0}")]
    Invalid(#[from] MappingError),
}

/// Builds the extractor's lexicon from `dir`'s findings.tsv, body_sites.tsv,
/// descriptors.tsv, assessments.tsv, critical.tsv and sections.tsv, keeping the built-in table for each file
/// the directory lacks. Errors name the file and the line.
pub fn load_lexicon(dir: &Path) -> Result<Lexicon, TablesError> {
    let builtin = MappingFiles::BUILTIN;
    let findings = read_or(dir, "findings.tsv", builtin.findings)?;
    let body_sites = read_or(dir, "body_sites.tsv", builtin.body_sites)?;
    let descriptors = read_or(dir, "descriptors.tsv", builtin.descriptors)?;
    let assessments = read_or(dir, "assessments.tsv", builtin.assessments)?;
    let critical = read_or(dir, "critical.tsv", builtin.critical)?;
    let sections = read_or(dir, "sections.tsv", builtin.sections)?;
    let files = MappingFiles {
        findings: (&findings.0, &findings.1),
        body_sites: (&body_sites.0, &body_sites.1),
        descriptors: (&descriptors.0, &descriptors.1),
        assessments: (&assessments.0, &assessments.1),
        critical: (&critical.0, &critical.1),
        sections: (&sections.0, &sections.1),
    };
    Ok(Lexicon::parse(files)?)
}

/// The (name, content) of `dir/file`, or the built-in table when the file is absent.
fn read_or(dir: &Path, file: &str, builtin: (&str, &str)) -> Result<(String, String), TablesError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok((path.display().to_string(), content)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok((builtin.0.to_owned(), builtin.1.to_owned()))
        }
        Err(source) => Err(TablesError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_keeps_the_builtin_tables() {
        let dir = tempfile::tempdir().unwrap();
        let lexicon = load_lexicon(dir.path()).unwrap();
        let extraction = reportsplit_split::extract("IMPRESSION: No pneumothorax.", &lexicon);
        assert_eq!(extraction.findings.len(), 1);
    }

    #[test]
    fn a_bad_table_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("findings.tsv"), "not\ta\tvalid\ttable\n").unwrap();
        let error = load_lexicon(dir.path()).unwrap_err().to_string();
        assert!(error.contains("findings.tsv:1"), "{error}");
    }
}
