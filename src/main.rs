//! The `reportsplit` command: a thin binary over the library (see
//! ARCHITECTURE.md). The command line lives in [`cli`].

mod cli;

fn main() -> std::process::ExitCode {
    // A panic message can quote the data being processed (a string slice of
    // report text); print only where it happened.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
        eprintln!("reportsplit: internal error (panic) at {location}");
    }));
    cli::main()
}
