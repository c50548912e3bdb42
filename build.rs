//! Regenerates `include/aiproxy.h` with cbindgen from the C API in `src/ffi.rs` and the error
//! codes in `src/error.rs` (the single source of the `AIPROXY_ERR_*` constants).

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let header = cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi.rs"))
        .with_src(crate_dir.join("src/error.rs"))
        .with_config(config)
        .generate()
        .expect("generate the C header");
    // Only write on change so the header's mtime stays stable for builds that include it.
    header.write_to_file(crate_dir.join("include/aiproxy.h"));
    soname();
}

/// A versioned soname on Linux (`libaiproxy.so.<major>`), so an installed library can sit next to
/// other major versions (scripts/install.sh installs the file under that name plus the dev
/// symlink). Programs linked against the library record the soname, so the profile directory
/// gets a `libaiproxy.so.<major>` symlink too: in-repository builds (the Go binding's fallback, the
/// C example) keep running from target/<profile>.
fn soname() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    let soname = format!("libaiproxy.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // OUT_DIR is target/<profile>/build/aiproxy-<hash>/out.
    let Some(profile_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(PathBuf::from))
    else {
        return;
    };
    let link = profile_dir.join(&soname);
    if std::fs::read_link(&link).ok().as_deref() != Some(std::path::Path::new("libaiproxy.so")) {
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("libaiproxy.so", &link);
    }
}
