//! Snapshot tests of every command's `--help` (insta): the examples and flags people read.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_churnseg"))
        .args(args)
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("main", help(&[]));
    for command in [
        "generate", "validate", "features", "train", "score", "run", "report",
    ] {
        let text = help(&[command]);
        if command != "run" {
            assert!(text.contains("Example:"), "{command} --help has no example");
        }
        insta::assert_snapshot!(command, text);
    }
}
