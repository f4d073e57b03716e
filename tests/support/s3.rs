//! An S3-protocol server for a test (`s3_server.py`: moto, single-threaded, on a free
//! port of 127.0.0.1), stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server with one bucket.
pub struct S3Server {
    child: Child,
    port: u16,
    /// The bucket it made.
    pub bucket: String,
}

impl S3Server {
    /// Starts the server with `python` (which has moto) and makes `bucket`.
    pub fn start(python: &str, bucket: &str) -> S3Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/s3_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(bucket)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the S3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the server's port");
        let port = line.trim().strip_prefix("port ").and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("the S3 server did not start: {line:?}"));
        S3Server { child, port, bucket: bucket.to_string() }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The keys in the bucket under `prefix`, sorted (listed with boto3 by `python`).
    pub fn keys(&self, python: &str, prefix: &str) -> Vec<String> {
        let script = format!(
            "import boto3\n\
             c = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', \
             region_name='us-east-1')\n\
             for page in c.get_paginator('list_objects_v2').paginate(Bucket='{}', Prefix='{prefix}'):\n    \
             for o in page.get('Contents', []):\n        print(o['Key'])\n",
            self.endpoint(),
            self.bucket
        );
        let out = Command::new(python).args(["-c", &script]).output().expect("run python");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        keys.sort();
        keys
    }

    /// The environment a client of the server needs: test credentials (the server checks
    /// no signature), region and endpoint.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
