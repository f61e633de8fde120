use std::path::Path;

use clap::CommandFactory;
use pretty_assertions::assert_eq;

use bitrouter::cli::{Cli, Shell};

use crate::support::TestContext;

/// Compares a generated file with the committed one; `BITROUTER_BLESS=1` rewrites it instead.
fn check_generated(path: &Path, fresh: &[u8]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(path);
    if std::env::var_os("BITROUTER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, fresh).expect("write generated file");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is out of date with the CLI definition; run `BITROUTER_BLESS=1 cargo test --test it generated` and commit",
        path.display()
    );
}

#[test]
fn generated_completions_match_cli() {
    for shell in Shell::ALL {
        let fresh = bitrouter::commands::completions::script(shell);
        check_generated(&Path::new("completions").join(shell.file_name()), &fresh);
    }
}

#[test]
fn generated_man_page_matches_cli() {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("render man page");
    check_generated(Path::new("man/bitrouter.1"), &out);
}

#[test]
fn completions_command_prints_the_committed_script() {
    let ctx = TestContext::new();
    let out = ctx
        .cmd()
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/bitrouter.bash"))
            .expect("committed completions");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&committed)
    );
}

#[test]
fn help_lists_commands_and_examples() {
    let ctx = TestContext::new();
    let out = ctx.cmd().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: bitrouter [OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("completions"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let ctx = TestContext::new();
    let out = ctx.cmd().arg("frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
}

#[test]
fn bad_shell_is_a_usage_error() {
    let ctx = TestContext::new();
    let out = ctx
        .cmd()
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
