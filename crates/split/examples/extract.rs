//! Prints the extraction of a text file (or standard input) as JSON, with
//! the built-in tables: the core alone, without the worker. With
//! `--lines`, each input line is a JSON string (one report text) and each
//! output line the extraction of that report.
//!
//! `cargo run -p reportsplit-split --example extract -- report.txt`

use std::io::{BufRead, Read, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines = args.iter().any(|a| a == "--lines");
    let path = args.iter().find(|a| !a.starts_with("--"));
    let mut input: Box<dyn BufRead> = match path {
        Some(path) if path != "-" => Box::new(std::io::BufReader::new(std::fs::File::open(path)?)),
        _ => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let lexicon = reportsplit_split::Lexicon::builtin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if lines {
        for line in input.lines() {
            let text: String = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
            let extraction = reportsplit_split::extract(&text, &lexicon);
            serde_json::to_writer(&mut out, &extraction).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
    } else {
        let mut text = String::new();
        input.read_to_string(&mut text)?;
        let extraction = reportsplit_split::extract(&text, &lexicon);
        serde_json::to_writer_pretty(&mut out, &extraction).map_err(std::io::Error::other)?;
        writeln!(out)?;
    }
    out.flush()
}
