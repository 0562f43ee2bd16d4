//! Helpers shared by the CLI tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A `mskbench serve …` process, stopped with SIGTERM on drop.
pub(crate) struct Served {
    child: Child,
    pub(crate) first_line: String,
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    pub(crate) fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mskbench"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        assert!(!first_line.is_empty(), "mskbench {args:?} printed no address");
        Served { child, first_line: first_line.trim().to_owned(), _stdout: stdout }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, at most `bound`; kills it and panics with
/// `what` past that, so a process that hangs fails its test rather than
/// hanging it.
pub(crate) fn wait_bounded(child: &mut Child, bound: std::time::Duration, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{what} did not end within {bound:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
