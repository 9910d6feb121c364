//! The section table: the header variants that open each section kind and
//! the LOINC code of each kind, parsed from mappings/sections.tsv into one
//! anchored, case-insensitive automaton. The layout reads headers with it;
//! the lexicon loads it with the other tables. It names only `table`, the
//! reader of every table and of a site's overlay.

use aho_corasick::{
    AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Anchored, Input, MatchKind, StartKind,
};

use crate::table::{Source, rows};
use crate::{Code, MappingError, SectionKind};

/// Section header variants and the LOINC code of each section kind, parsed
/// from mappings/sections.tsv.
#[derive(Debug)]
pub(crate) struct SectionTable {
    /// Indexed by `SectionKind as usize`.
    codes: [Option<Code>; KIND_COUNT],
    /// Pattern id of `matcher` → the kind that header opens.
    header_kinds: Vec<SectionKind>,
    /// Anchored, case-insensitive, longest-match automaton over all header variants.
    matcher: AhoCorasick,
    /// Upper-cased first letters of the variants: most boundaries start with
    /// another letter, and this test is far cheaper than the automaton.
    first_letters: [bool; 256],
}

const KIND_COUNT: usize = 8;

fn kind_from_name(name: &str) -> Option<SectionKind> {
    Some(match name {
        "indication" => SectionKind::Indication,
        "technique" => SectionKind::Technique,
        "comparison" => SectionKind::Comparison,
        "findings" => SectionKind::Findings,
        "impression" => SectionKind::Impression,
        "recommendation" => SectionKind::Recommendation,
        "addendum" => SectionKind::Addendum,
        "other" => SectionKind::Other,
        _ => return None,
    })
}

#[cfg(test)]
impl SectionTable {
    /// The table shipped in mappings/sections.tsv (the Lexicon loads it in production).
    pub(crate) fn builtin() -> SectionTable {
        SectionTable::parse(Source {
            base: (
                "mappings/sections.tsv",
                include_str!("../../../mappings/sections.tsv"),
            ),
            site: None,
        })
        .unwrap_or_else(|error| panic!("built-in section table is invalid: {error}"))
    }
}

impl SectionTable {
    /// Parses a sections table (see the comment block at the top of
    /// mappings/sections.tsv for the format). Errors name the file and line.
    pub(crate) fn parse(source: Source<'_>) -> Result<SectionTable, MappingError> {
        let mut codes: [Option<Code>; KIND_COUNT] = Default::default();
        let mut seen_kind = [false; KIND_COUNT];
        let mut variants: Vec<String> = Vec::new();
        let mut header_kinds = Vec::new();
        let header = ["kind", "system", "code", "display", "headers"];
        for row in rows(source, &header, 1)? {
            let line_no = row.line;
            let error = |line: usize, message: String| MappingError {
                file: row.file.to_owned(),
                line,
                message,
            };
            let [kind, system, code, display, headers] = row.columns[..] else {
                unreachable!("rows() checked the column count")
            };
            let kind = kind_from_name(kind.trim()).ok_or_else(|| {
                error(
                    line_no,
                    format!(
                        "unknown section kind {kind:?} (expected indication, technique, comparison, findings, impression, recommendation, addendum or other)"
                    ),
                )
            })?;
            if std::mem::replace(&mut seen_kind[kind as usize], true) {
                return Err(error(
                    line_no,
                    format!("section kind {kind:?} listed twice"),
                ));
            }
            let (system, code, display) = (system.trim(), code.trim(), display.trim());
            codes[kind as usize] = match (system.is_empty(), code.is_empty(), display.is_empty()) {
                (true, true, true) => None,
                (false, false, false) => Some(Code {
                    system: system.to_owned(),
                    code: code.to_owned(),
                    display: display.to_owned(),
                }),
                _ => {
                    return Err(error(
                        line_no,
                        "system, code and display must be all present or all empty".to_owned(),
                    ));
                }
            };
            for variant in headers.split('|') {
                let variant = variant.trim();
                if variant.is_empty() {
                    return Err(error(line_no, "empty header variant".to_owned()));
                }
                if !variant
                    .bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b' ' || b == b'-' || b == b'/')
                {
                    return Err(error(
                        line_no,
                        format!(
                            "header variant {variant:?}: only ASCII letters, spaces, '-' and '/' are allowed"
                        ),
                    ));
                }
                let upper = variant.to_ascii_uppercase();
                if variants.contains(&upper) {
                    return Err(error(
                        line_no,
                        format!("header variant {variant:?} listed twice"),
                    ));
                }
                variants.push(upper);
                header_kinds.push(kind);
            }
        }
        if variants.is_empty() {
            return Err(MappingError {
                file: source.base.0.to_owned(),
                line: 1,
                message: "the file lists no section headers".to_owned(),
            });
        }
        let mut first_letters = [false; 256];
        for variant in &variants {
            first_letters[usize::from(variant.as_bytes()[0])] = true;
        }
        let matcher = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .build(&variants)
            .map_err(|e| MappingError {
                file: source.base.0.to_owned(),
                line: 1,
                message: format!("cannot build the header matcher: {e}"),
            })?;
        Ok(SectionTable {
            codes,
            header_kinds,
            matcher,
            first_letters,
        })
    }

    /// The LOINC code of a section kind, if the table gives one.
    pub(crate) fn code(&self, kind: SectionKind) -> Option<&Code> {
        self.codes[kind as usize].as_ref()
    }

    /// The longest header variant starting exactly at `at`, as (kind, end).
    pub(crate) fn header_at(&self, text: &str, at: usize) -> Option<(SectionKind, usize)> {
        let first = text.as_bytes().get(at)?.to_ascii_uppercase();
        if !self.first_letters[usize::from(first)] {
            return None;
        }
        let found = self
            .matcher
            .find(Input::new(text).range(at..).anchored(Anchored::Yes))?;
        Some((self.header_kinds[found.pattern().as_usize()], found.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SectionTable {
        SectionTable::builtin()
    }

    #[test]
    fn builtin_table_parses_and_codes_every_named_kind() {
        let table = table();
        assert_eq!(
            table.code(SectionKind::Findings).map(|c| c.code.as_str()),
            Some("18782-3")
        );
        assert_eq!(
            table.code(SectionKind::Impression).map(|c| c.code.as_str()),
            Some("19005-8")
        );
        assert_eq!(
            table
                .code(SectionKind::Recommendation)
                .map(|c| c.code.as_str()),
            Some("18783-1")
        );
        assert_eq!(
            table.code(SectionKind::Comparison).map(|c| c.code.as_str()),
            Some("18834-2")
        );
        assert_eq!(
            table.code(SectionKind::Technique).map(|c| c.code.as_str()),
            Some("55111-9")
        );
        assert_eq!(
            table.code(SectionKind::Indication).map(|c| c.code.as_str()),
            Some("18785-6")
        );
        assert_eq!(
            table.code(SectionKind::Addendum).map(|c| c.code.as_str()),
            Some("55107-7")
        );
        assert_eq!(table.code(SectionKind::Other), None);
        assert_eq!(
            table.code(SectionKind::Findings).map(|c| c.system.as_str()),
            Some("http://loinc.org")
        );
    }

    #[test]
    fn bad_tables_name_file_and_line() {
        let header = "kind\tsystem\tcode\tdisplay\theaders\n";
        let cases = [
            ("# only a comment\n", 1, "no header line"),
            ("kind\tcode\n", 1, "expected the header"),
            (
                &*format!("{header}findings\thttp://loinc.org\t18782-3\tX\n"),
                2,
                "5 tab-separated",
            ),
            (
                &*format!("{header}# c\nfinding\ts\tc\td\tFINDINGS\n"),
                3,
                "unknown section kind",
            ),
            (
                &*format!("{header}findings\ts\t\td\tFINDINGS\n"),
                2,
                "all present or all empty",
            ),
            (
                &*format!("{header}findings\ts\tc\td\tFINDINGS|\n"),
                2,
                "empty header variant",
            ),
            (
                &*format!("{header}findings\ts\tc\td\tFIND1NGS\n"),
                2,
                "only ASCII letters",
            ),
            (
                &*format!("{header}findings\ts\tc\td\tFINDINGS\nimpression\ts\tc\td\tfindings\n"),
                3,
                "listed twice",
            ),
            (
                &*format!("{header}findings\ts\tc\td\tFINDINGS\nfindings\ts\tc\td\tREPORT\n"),
                3,
                "listed twice",
            ),
        ];
        for (content, line, message) in cases {
            let source = Source {
                base: ("custom.tsv", content),
                site: None,
            };
            let error = SectionTable::parse(source).expect_err(content);
            assert_eq!(error.file, "custom.tsv");
            assert_eq!(error.line, line, "{content:?}: {error}");
            assert!(error.message.contains(message), "{content:?}: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("custom.tsv:{line}: "))
            );
        }
    }
}
