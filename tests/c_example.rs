//! Builds `examples/c/translate_demo.c` and `tests/c/api_contract.c` against `include/aiproxy.h`
//! and the cdylib, runs them, and checks their output. Also checks that the committed header is
//! the one cbindgen generates. (tests/c/run_valgrind.sh runs both under valgrind.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cdylib next to this test binary's profile directory (target/<profile>/libaiproxy.so).
fn cdylib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Builds `src` (relative to the crate root) against the header and the cdylib; returns the binary.
fn build_c(src: &str, name: &str) -> PathBuf {
    let lib_dir = cdylib_dir();
    // `cargo test` builds the rlib only; build the cdylib of the same (debug) profile, every time,
    // so the C programs never run against a stale library (a no-op when it is current).
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--lib", "-p", "aiproxy"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --lib failed");
    assert!(
        lib_dir.join("libaiproxy.so").exists(),
        "cdylib missing in {}",
        lib_dir.display()
    );
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(src))
        .arg("-L")
        .arg(&lib_dir)
        .arg("-laiproxy")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "{src} failed to compile");
    exe
}

/// Every function of the header, every documented argument rule and error path, and one config
/// shared by threads, checked from C.
#[test]
fn c_api_contract_holds_from_c() {
    let exe = build_c("tests/c/api_contract.c", "api_contract");
    let out = Command::new(&exe)
        .output()
        .expect("run the contract program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failures"), "{stdout}");
}

#[test]
fn c_example_builds_and_translates_a_stream() {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let exe = build_c("examples/c/translate_demo.c", "translate_demo");
    let out = Command::new(&exe).output().expect("run the C example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "C example failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("upstream: api.deepseek.com/chat/completions (model deepseek-chat)"),
        "{stdout}"
    );
    assert!(stdout.contains("set header: authorization"));
    assert!(
        !stdout.contains("sk-demo"),
        "the example must not print the key"
    );
    assert!(stdout.contains("mode: stream"));
    assert!(
        stdout.contains("\"content\":\"Hi\"") && stdout.contains("\"content\":\" there\""),
        "{stdout}"
    );
    assert!(stdout.contains("data: [DONE]"));
    assert!(
        stdout.contains("usage: prompt=3 completion=2 total=5"),
        "{stdout}"
    );
    // A bad config reports the field path.
    let bad = out_dir.join("bad_config.json");
    std::fs::write(
        &bad,
        r#"{"provider": {"type": "azure", "apiTokens": ["k"]}}"#,
    )
    .unwrap();
    let out = Command::new(&exe).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config error [provider.azureServiceUrl]"),
        "{stderr}"
    );
}

/// build.rs regenerates include/aiproxy.h on every build; if that changed the file relative to
/// what is committed, the committed header is stale.
#[test]
fn committed_header_is_current() {
    let git = Command::new("git")
        .current_dir(root())
        .args(["diff", "--exit-code", "--", "include/aiproxy.h"])
        .output();
    match git {
        Ok(o) if o.status.code() == Some(0) => {}
        Ok(o) if o.status.code() == Some(1) => {
            panic!(
                "include/aiproxy.h is stale; commit the regenerated header:\n{}",
                String::from_utf8_lossy(&o.stdout)
            )
        }
        other => panic!("cannot run git diff on the header: {other:?}"),
    }
}
