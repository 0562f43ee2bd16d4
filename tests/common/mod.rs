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

/// moto's server on a loopback port (from the venv scripts/test makes), killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) url: String,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let python = std::env::var("MSKBENCH_PYTHON").unwrap_or_else(|_| {
            panic!("MSKBENCH_PYTHON is not set: this test needs moto; run scripts/test (it installs moto and sets it)")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} -m moto.server ({e}); run scripts/test to install moto"));
        let mut moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status}; run scripts/test to install moto");
            }
            assert!(std::time::Instant::now() < deadline, "moto_server did not listen within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
