//! Helpers shared by the test suites of several crates (a dev-dependency
//! only; nothing here ships).
//!
//! [`Moto`] starts moto's server — the reference for AWS API shapes
//! (Firehose, S3, Glue) — from the Python of the test virtual environment
//! that `scripts/test` makes, on a free loopback port, and kills it on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's server on a loopback port, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`: the endpoint URL for SDKs.
    pub url: String,
}

impl Moto {
    /// Starts moto with the Python of `MSKBENCH_PYTHON` (set by scripts/test).
    ///
    /// # Panics
    /// With instructions when it is missing or does not start: a test that
    /// needs moto must not silently pass without it.
    pub fn start() -> Moto {
        let python = std::env::var("MSKBENCH_PYTHON").unwrap_or_else(|_| {
            panic!(
                "MSKBENCH_PYTHON is not set: this test needs moto from the test virtual \
                 environment. Run scripts/test (it installs moto and sets MSKBENCH_PYTHON)."
            )
        });
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} -m moto.server ({e}); run scripts/test to install moto"));
        let mut moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status}; run scripts/test to install moto");
            }
            assert!(Instant::now() < deadline, "moto_server did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(100));
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
