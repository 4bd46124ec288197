//! How commands print: aligned tables for people, JSON for scripts. Everything goes through
//! [`write`], so that a reader that went away (`operator status --json | head -1`) ends the
//! command quietly with status 141, as Unix tools end on SIGPIPE, instead of a panic.

use std::io::Write;

use color_eyre::eyre::Result;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// A borderless table with a header, sized to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

/// The status of a process that SIGPIPE ended.
pub const BROKEN_PIPE_STATUS: i32 = 128 + 13;

/// Writes to stdout. When nobody reads any more, the command ends here, quietly.
pub fn write(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        // Anything else (a full disk behind a redirect) is worth saying once.
        let _ = writeln!(std::io::stderr(), "error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!`, through [`write`].
macro_rules! say {
    () => { $crate::cli::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use say;

/// `print!`, through [`write`].
macro_rules! say_part {
    ($($arg:tt)*) => { $crate::cli::output::write(format_args!($($arg)*)) };
}
pub(crate) use say_part;

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One JSON document per line, for streams (`monitor --json`, `load --json`).
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    say!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}
