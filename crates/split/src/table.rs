//! Reading the TSV tables of mappings/, and a site's overlay of them. A leaf:
//! it names no other module of the crate.
//!
//! A site does not copy a shipped table to change three rows of it: its file
//! of the same name (same header) lists only what differs. A row whose key
//! (the table's first columns: a concept's system and code, a section's kind)
//! is a shipped row's key replaces every shipped row with that key; a row
//! whose first column starts with `-` removes them (only the key columns are
//! needed); any other row is added. The rows keep their own file and line,
//! so every error still names the file and the line it is about.

use std::collections::HashSet;

/// A mapping file that cannot be used, naming the file and the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

pub(crate) fn error(file: &str, line: usize, message: String) -> MappingError {
    MappingError {
        file: file.to_string(),
        line,
        message,
    }
}

/// A table's text: the shipped (or replaced) table, and a site's overlay of
/// it. Each is (file name for errors, content).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) base: (&'a str, &'a str),
    pub(crate) site: Option<(&'a str, &'a str)>,
}

/// One data row, with where it was read.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    pub(crate) file: &'a str,
    pub(crate) line: usize,
    pub(crate) columns: Vec<&'a str>,
}

impl Row<'_> {
    pub(crate) fn error(&self, message: String) -> MappingError {
        error(self.file, self.line, message)
    }
}

/// The table's rows after the site's overlay: the base rows the site neither
/// replaces nor removes, in order, then the site's added or replacing rows.
/// `key_columns` leading columns identify a row. Comments (`#`), blank lines
/// and the header are skipped; every row has the header's column count (a
/// removal row at least the key's).
pub(crate) fn rows<'a>(
    source: Source<'a>,
    header: &[&str],
    key_columns: usize,
) -> Result<Vec<Row<'a>>, MappingError> {
    let mut rows = read(source.base, header, key_columns, false)?
        .into_iter()
        .map(|(row, _)| row)
        .collect::<Vec<_>>();
    let Some(site) = source.site else {
        return Ok(rows);
    };
    let site_rows = read(site, header, key_columns, true)?;
    let key = |row: &Row<'a>| -> Vec<&'a str> { row.columns[..key_columns].to_vec() };
    let base_keys: HashSet<Vec<&str>> = rows.iter().map(key).collect();
    let mut named: HashSet<Vec<&str>> = HashSet::new();
    for (row, removal) in &site_rows {
        let row_key = key(row);
        if *removal && !base_keys.contains(&row_key) {
            return Err(row.error(format!(
                "removes {}, which the shipped table does not have",
                row_key.join(" ")
            )));
        }
        named.insert(row_key);
    }
    rows.retain(|row| !named.contains(&key(row)));
    rows.extend(
        site_rows
            .into_iter()
            .filter(|(_, removal)| !removal)
            .map(|(row, _)| row),
    );
    Ok(rows)
}

/// The data rows of one file, each with whether it is a removal (`-` before
/// its first column; allowed only in a site's overlay).
fn read<'a>(
    (file, content): (&'a str, &'a str),
    header: &[&str],
    key_columns: usize,
    overlay: bool,
) -> Result<Vec<(Row<'a>, bool)>, MappingError> {
    let mut seen_header = false;
    let mut out = Vec::new();
    for (index, raw) in content.lines().enumerate() {
        let line = index + 1;
        let row = raw.strip_suffix('\r').unwrap_or(raw);
        if row.trim().is_empty() || row.starts_with('#') {
            continue;
        }
        let mut columns: Vec<&str> = row.split('\t').collect();
        if !seen_header {
            seen_header = true;
            if columns != header {
                return Err(error(
                    file,
                    line,
                    format!("expected the header {:?}", header.join("\\t")),
                ));
            }
            continue;
        }
        let removal = match columns[0].strip_prefix('-') {
            Some(first) if overlay => {
                columns[0] = first;
                true
            }
            Some(_) => {
                return Err(error(
                    file,
                    line,
                    "a `-` row removes a shipped row: only a site's overlay may have one"
                        .to_string(),
                ));
            }
            None => false,
        };
        let enough = if removal {
            columns.len() >= key_columns && columns.len() <= header.len()
        } else {
            columns.len() == header.len()
        };
        if !enough {
            return Err(error(
                file,
                line,
                format!(
                    "expected {} tab-separated columns ({}), found {}",
                    header.len(),
                    header.join(", "),
                    columns.len()
                ),
            ));
        }
        out.push((
            Row {
                file,
                line,
                columns,
            },
            removal,
        ));
    }
    if !seen_header {
        return Err(error(file, 1, "the file has no header line".to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [&str; 3] = ["system", "code", "value"];

    fn merged(base: &str, site: &str) -> Result<Vec<(String, usize, String)>, MappingError> {
        let source = Source {
            base: ("shipped.tsv", base),
            site: Some(("site.tsv", site)),
        };
        Ok(rows(source, &HEADER, 2)?
            .into_iter()
            .map(|r| (r.file.to_string(), r.line, r.columns.join(" ")))
            .collect())
    }

    const BASE: &str = "# shipped\nsystem\tcode\tvalue\ns\t1\ta\ns\t2\tb\ns\t2\tc\ns\t3\td\n";

    #[test]
    fn a_site_adds_replaces_and_removes_rows_by_key() {
        let site = "system\tcode\tvalue\n-s\t1\ns\t2\tz\ns\t9\tnew\n";
        assert_eq!(
            merged(BASE, site).unwrap(),
            [
                ("shipped.tsv".to_string(), 6, "s 3 d".to_string()),
                ("site.tsv".to_string(), 3, "s 2 z".to_string()),
                ("site.tsv".to_string(), 4, "s 9 new".to_string()),
            ]
        );
    }

    #[test]
    fn an_empty_overlay_keeps_the_shipped_table() {
        let rows = merged(BASE, "system\tcode\tvalue\n").unwrap();
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn removing_a_row_the_table_lacks_names_the_site_line() {
        let e = merged(BASE, "system\tcode\tvalue\n# typo\n-s\t7\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("site.tsv", 3));
        assert!(e.message.contains("does not have"), "{e}");
    }

    #[test]
    fn a_removal_outside_an_overlay_is_an_error() {
        let e = merged("system\tcode\tvalue\n-s\t1\tx\n", "system\tcode\tvalue\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("shipped.tsv", 2));
    }

    #[test]
    fn an_overlay_needs_the_same_header() {
        let e = merged(BASE, "system\tcode\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("site.tsv", 1));
    }
}
