//! Named crash points for the reliability tests.
//!
//! `crash_point!("fs.restore.after_unlink")` marks a place where a crash
//! leaves durable state that recovery must handle. The points exist only in
//! builds with the `failpoints` feature (tests); in any other build the
//! macro expands to nothing. They are driven by the `fail` crate:
//!
//! - in-process tests: `fail::cfg(name, "return")` makes the function
//!   return an error at the point, which is what a crash there leaves
//!   behind for the next call to resume;
//! - end-to-end tests: `FAILPOINTS="name=return(pause)"` makes the process
//!   print `recourse: crash point `name` reached` on stderr and stop there,
//!   for the test to SIGKILL it from outside; `return(abort)` aborts at once.

#[doc(hidden)]
pub use fail as __fail;

use crate::ConnectorError;

/// Marks a crash point. The enclosing function must return a `Result`
/// whose error converts from [`ConnectorError`].
#[macro_export]
macro_rules! crash_point {
    ($name:expr) => {{
        // Evaluated in every build, so a name held in a variable is used
        // even where the points compile to nothing.
        let name: &str = $name;
        let _ = name;
        $crate::crash::__fail::fail_point!(name, |arg: Option<String>| Err($crate::crash::reached(
            name, arg
        )
        .into()))
    }};
}

/// What a configured crash point does: abort, pause until killed, or hand
/// back an error that stops the operation there (the in-process "cut").
pub fn reached(name: &str, arg: Option<String>) -> ConnectorError {
    match arg.as_deref() {
        Some("abort") => {
            eprintln!("recourse: crash point `{name}` reached; aborting");
            std::process::abort();
        }
        Some("pause") => {
            eprintln!("recourse: crash point `{name}` reached; paused");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => ConnectorError::Io(format!("crash point `{name}`: cut here")),
    }
}

/// A crash point where there is no `Result` to cut into (a background task
/// such as the store's group commit): only `pause` and `abort` do
/// anything, which is all the end-to-end SIGKILL tests use.
pub fn pause_point(name: &str) {
    #[cfg(feature = "failpoints")]
    {
        let _ = fail::eval(name, |arg| reached(name, arg));
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Reads `FAILPOINTS` from the environment (builds with the `failpoints`
/// feature only; elsewhere it does nothing). Called once by `recourse serve`.
pub fn setup_from_env() {
    #[cfg(feature = "failpoints")]
    {
        if std::env::var_os("FAILPOINTS").is_some() {
            // The scenario holds the fail registry for the whole process.
            std::mem::forget(fail::FailScenario::setup());
        }
    }
}
