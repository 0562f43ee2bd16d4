//! Helpers shared by sim's integration tests: SDK clients pointed at a
//! local endpoint, and moto started from the test virtual environment.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};

/// An `aws-sdk-firehose` client for `url`, plain HTTP, retries off (so each
/// call is one request and the tests see every throttle).
pub fn firehose_client(url: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

/// moto's server on a loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    /// Starts `moto_server` with the Python of `MSKBENCH_PYTHON` (set by
    /// scripts/test). Panics with instructions when it is missing: a test
    /// that needs moto must not silently pass without it.
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

    /// Creates an S3 bucket in moto (Firehose there delivers into it).
    pub fn create_bucket(&self, bucket: &str) {
        ureq::put(&format!("{}/{bucket}", self.url)).send_empty().unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
