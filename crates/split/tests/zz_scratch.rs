use reportsplit_split::{extract, Lexicon};
#[test]
fn scratch() {
    let lex = Lexicon::builtin();
    for t in std::fs::read_to_string("/tmp/scratch/in.txt").unwrap().lines() {
        let e = extract(t, &lex);
        println!("== {t}");
        for f in &e.findings { println!("   {:?} {:?} {:?} {:?}", f.term, f.code.map(|c| c.code.as_str()), f.assertion, f.certainty); }
    }
}
