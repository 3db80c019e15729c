//! The demo (the README's main command) runs to completion, so it cannot rot.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// `cargo test` builds the examples next to the test binaries (target/<profile>/examples);
/// when only this test was asked for, build the example first.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

#[test]
fn the_demo_runs_to_completion_over_one_connection() {
    let output = Command::new(example("demo")).arg("--quick").output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |label: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("TCP connections used").trim_end().ends_with(" 1"), "{stdout}");
    assert!(line("bulk upload").contains("checksum ok"), "{stdout}");
    assert!(line("event stream").contains("500 events, in order"), "{stdout}");
}

#[test]
fn the_examples_explain_themselves() {
    for name in ["demo", "server", "client"] {
        let output = Command::new(example(name)).arg("--help").output().expect("run example");
        assert!(output.status.success(), "{name} --help failed");
        assert!(String::from_utf8_lossy(&output.stdout).contains("USAGE"), "{name} --help");
    }
}
