//! The `canary-tagger` command line, run as a user runs it: the built binary, real files,
//! exit codes, stdout and stderr.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use canary_tagger::config::CompiledConfig;
use canary_tagger::engine;
use canary_tagger::hash;
use canary_tagger::request::OwnedRequest;
use serde_json::Value;

mod common;

use common::SPEC_EXAMPLE;

const BIN: &str = env!("CARGO_BIN_EXE_canary-tagger");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

fn finish(output: Output) -> Run {
    let run = Run {
        code: output.status.code().expect("exited by signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "the CLI panicked:\n{}",
        run.stderr
    );
    run
}

fn run(args: &[&str]) -> Run {
    finish(Command::new(BIN).args(args).output().unwrap())
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child.wait_with_output().unwrap())
}

/// A file with `content` under Cargo's per-test temporary directory.
fn temp_file(name: &str, content: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// The stdout of a command that succeeds (exit status 0).
fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

/// The error lines of a command that finds its configuration invalid: exit status 1,
/// nothing on stdout.
fn rejected(args: &[&str]) -> Vec<String> {
    let out = run(args);
    assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
    assert_eq!(out.stdout, "", "{args:?}");
    out.stderr_lines().into_iter().map(String::from).collect()
}

fn spec_example_file() -> String {
    repo("fixtures/configs/spec-example.json")
        .to_str()
        .unwrap()
        .to_string()
}

/// Exit status 2, `stderr` exactly, nothing on stdout.
fn assert_usage_error(args: &[&str], out: &Run, stderr: &str) {
    assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    assert_eq!(out.stderr, stderr, "{args:?}");
    assert_eq!(out.stdout, "", "{args:?}");
}

fn explain_json(args: &[&str]) -> Value {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

// The cases, a file a command, in tests/cli/ (there Cargo does not take each file for a
// test crate of its own); the helpers above serve them all.
#[path = "cli/explain.rs"]
mod explain;
#[path = "cli/render.rs"]
mod render;
#[path = "cli/schema.rs"]
mod schema;
#[path = "cli/sidecar.rs"]
mod sidecar;
#[path = "cli/signing.rs"]
mod signing;
#[path = "cli/status.rs"]
mod status;
#[path = "cli/usage.rs"]
mod usage;
#[path = "cli/validate.rs"]
mod validate;
