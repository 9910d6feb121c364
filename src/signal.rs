//! SIGTERM and SIGINT as a [`CancellationToken`]. A leaf: every
//! long-running mode takes a token and knows nothing of signals, so tests
//! stop them by cancelling a token of their own.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C); the commands
/// then finish what is in flight and save their progress. Operators who
/// press Ctrl-C twice expect a hard stop: a second SIGINT exits at once with
/// 130 (safe too: every write is idempotent, progress is re-read).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install the SIGTERM/SIGINT handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(
                signal = name,
                "stopping: finishing the work in flight and saving progress"
            );
            cancel.cancel();
            if int.recv().await.is_some() {
                eprintln!("reportsplit: second interrupt, exiting without saving");
                std::process::exit(130);
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    token
}
