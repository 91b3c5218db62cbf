//! The libqmgr artifact: `libqmgr.so` and `libqmgr.a` (`cargo build --release` puts them in
//! `target/release/`). Everything they export — the `Co*`, `Sys*` and `Variant*` entry points
//! and the `IID_*`, `CLSID_*` and `LIBID_*` constants — is implemented in the `qmgr-ffi`
//! crate; this crate only links it into a C library, as wasmtime's c-api artifact does.
//!
//! rustc exports the `#[no_mangle]` items of every statically linked dependency from a
//! cdylib as it does the crate's own, so the library exports exactly what qmgr-ffi
//! defines; the re-export below also makes the Rust paths `qmgr::CoCreateInstance` …
//! name the same items as before the split.

pub use qmgr_ffi::*;
