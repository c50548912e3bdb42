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
}
