//! The machine-readable last line of a score, on a NegEx file written here
//! (the check `reportsplit eval negex` had before the kit scorers left the
//! worker binary; `--example score` prints the same report).

use reportsplit_eval::{Options, run};
use reportsplit_split::Lexicon;

#[test]
fn the_last_line_is_machine_readable() {
    let tsv = "line\tCondition\tsentence\tnegation\ttemporality\texperiencer\n\
         1\tpneumothorax\tThere is no PNEUMOTHORAX.\tNegated\tRecent\tPatient\n\
         2\tedema\tMild pulmonary EDEMA.\tAffirmed\tRecent\tPatient\n";
    let report = run(
        "negex",
        &[tsv.to_owned()],
        &Lexicon::builtin(),
        &Options::default(),
    )
    .expect("scored");
    assert_eq!(
        report.to_string().lines().last(),
        Some("negex negation precision=1.000 recall=1.000 f1=1.000 n=2")
    );
}
