use reportsplit_split::{Assertion, Lexicon, extract};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reports = std::fs::read_to_string(&args[1]).unwrap();
    let labels = std::fs::read_to_string(&args[2]).unwrap();
    let mut lr = csv::Reader::from_reader(labels.as_bytes());
    let h = lr.headers().unwrap().clone();
    let mut gold = std::collections::HashMap::new();
    for r in lr.records() { let r = r.unwrap(); gold.insert(r[0].to_string(), r.clone()); }
    let codes: std::collections::HashMap<&str,&str> = [("46621007","Atelectasis"),("8186001","Cardiomegaly"),("60046008","Effusion"),("409609008","Infiltration"),("4147007","Mass"),("427359005","Nodule"),("233604007","Pneumonia"),("36118008","Pneumothorax"),("95436008","Consolidation"),("19242006","Edema"),("87433001","Emphysema"),("51615001","Fibrosis"),("78381009","Pleural_Thickening")].into_iter().collect();
    let lex = Lexicon::builtin();
    let mut rr = csv::Reader::from_reader(reports.as_bytes());
    let mut stats: std::collections::BTreeMap<(String,bool), usize> = Default::default();
    for r in rr.records() { let r = r.unwrap();
        let text = format!("FINDINGS: {}\nIMPRESSION: {}", &r[6], &r[7]);
        let e = extract(&text, &lex);
        let g = &gold[&format!("CXR{}", &r[0])];
        for (code, label) in &codes {
            let present = e.findings.iter().any(|f| f.code.map(|c| c.code.as_str()) == Some(code) && f.assertion == Assertion::Present);
            let possible = e.findings.iter().any(|f| f.code.map(|c| c.code.as_str()) == Some(code) && f.assertion == Assertion::Possible);
            if possible && !present {
                let idx = h.iter().position(|x| x == *label).unwrap();
                *stats.entry((label.to_string(), &g[idx] == "1")).or_default() += 1;
                if (&g[idx] == "1") == std::env::var("SHOW").is_ok() { for f in e.findings.iter().filter(|f| f.code.map(|c| c.code.as_str()) == Some(code)) { println!("GOLD1 {label} {:?}", f.text); } }
            }
        }
    }
    for ((l,g),n) in stats { println!("{l} gold={g} possible-only={n}"); }
}
