//! Loading a site's overlays of the mapping tables at start-up. The built-in
//! tables (mappings/ compiled in) are the default; a file of the same name in
//! the `--mappings` directory lists only the rows the site adds, replaces or
//! removes (`-` before the first column), as mappings/README.md ("Site
//! overlays") describes.

use std::path::{Path, PathBuf};

use reportsplit_split::{Lexicon, MappingError, MappingFiles, SiteTables};

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

/// Builds the extractor's lexicon from the built-in tables and `dir`'s
/// overlays of them (findings.tsv, body_sites.tsv, descriptors.tsv,
/// assessments.tsv, critical.tsv, sections.tsv, sex_specific.tsv,
/// age_specific.tsv, order_regions.tsv; a missing file changes nothing). Errors name the file and the line.
pub fn load_lexicon(dir: &Path) -> Result<Lexicon, TablesError> {
    let findings = read_site(dir, "findings.tsv")?;
    let body_sites = read_site(dir, "body_sites.tsv")?;
    let descriptors = read_site(dir, "descriptors.tsv")?;
    let assessments = read_site(dir, "assessments.tsv")?;
    let critical = read_site(dir, "critical.tsv")?;
    let sections = read_site(dir, "sections.tsv")?;
    let sex_specific = read_site(dir, "sex_specific.tsv")?;
    let age_specific = read_site(dir, "age_specific.tsv")?;
    let order_regions = read_site(dir, "order_regions.tsv")?;
    let site = SiteTables {
        findings: borrow(&findings),
        body_sites: borrow(&body_sites),
        descriptors: borrow(&descriptors),
        assessments: borrow(&assessments),
        critical: borrow(&critical),
        sections: borrow(&sections),
        sex_specific: borrow(&sex_specific),
        age_specific: borrow(&age_specific),
        order_regions: borrow(&order_regions),
    };
    Ok(Lexicon::parse_with_site(MappingFiles::BUILTIN, site)?)
}

fn borrow(file: &Option<(String, String)>) -> Option<(&str, &str)> {
    file.as_ref()
        .map(|(name, content)| (name.as_str(), content.as_str()))
}

/// The (name, content) of `dir/file`, or `None` when the site has no such file.
fn read_site(dir: &Path, file: &str) -> Result<Option<(String, String)>, TablesError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(Some((path.display().to_string(), content))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
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
    fn a_site_overlay_removes_and_adds_critical_rules() {
        let dir = tempfile::tempdir().unwrap();
        let text = "IMPRESSION: Acute appendicitis. Large right pneumothorax.";
        let shipped = Lexicon::builtin();
        let builtin = reportsplit_split::extract(text, &shipped);
        assert_eq!(builtin.critical.len(), 2);
        // The site calls appendicitis in hours as before, but stops flagging
        // pneumothorax, and adds a rule of its own for pneumonia.
        std::fs::write(
            dir.path().join("critical.tsv"),
            "# site rules\nsystem\tcode\tcategory\trequires\texcludes\n\
             -http://snomed.info/sct\t36118008\n\
             http://snomed.info/sct\t233604007\t2\t-\t-\n",
        )
        .unwrap();
        let lexicon = load_lexicon(dir.path()).unwrap();
        let site = reportsplit_split::extract(
            "IMPRESSION: Acute appendicitis. Large right pneumothorax. Lobar pneumonia.",
            &lexicon,
        );
        let terms: Vec<&str> = site.critical.iter().map(|c| c.term).collect();
        assert_eq!(terms, ["Acute appendicitis", "Lobar pneumonia"]);
    }

    #[test]
    fn a_bad_table_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("findings.tsv"), "not\ta\tvalid\ttable\n").unwrap();
        let error = load_lexicon(dir.path()).unwrap_err().to_string();
        assert!(error.contains("findings.tsv:1"), "{error}");
    }
}
