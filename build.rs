//! Links libvosk.so (from the PyPI wheel, fetched by scripts/setup.sh) and records its folder
//! as an rpath, because `vosk-sys` has no build script of its own.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=HOTLINE_VOSK_LIB");
    let dir = match std::env::var_os("HOTLINE_VOSK_LIB") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
            .join("data/vosk"),
    };
    let lib = dir.join("libvosk.so");
    println!("cargo:rerun-if-changed={}", lib.display());
    if !lib.is_file() {
        panic!(
            "{} is missing: run `make setup` (scripts/setup.sh) or set HOTLINE_VOSK_LIB to the folder holding libvosk.so",
            lib.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
