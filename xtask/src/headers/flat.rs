//! The part of each header cbindgen writes: typedefs, structs and unions, constants, the
//! GUID statics and the exported functions. The interfaces are not its job (it cannot
//! flatten inherited slots, forward-declare the interface/vtable cycle or emit the call
//! macros), so they are excluded here and written by [`super::com`].

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::model::{AbiModel, FlatKind, Header};

/// Names the platform prelude defines itself, because their definition depends on the
/// compiler mode (`WCHAR`, the `REF*` types) or must not clash with other headers
/// (`TRUE`/`FALSE` are guarded); and `VARIANT::EMPTY`, a Rust-side convenience.
pub const WRITTEN_BY_HAND: [&str; 6] = ["WCHAR", "REFIID", "REFGUID", "REFCLSID", "TRUE", "FALSE"];
const RUST_ONLY: [&str; 1] = ["VARIANT_EMPTY"];

/// The cbindgen output for `header`: everything but the interfaces.
pub fn generate(ffi_crate: &Path, model: &AbiModel, header: Header) -> Result<String> {
    for name in WRITTEN_BY_HAND {
        ensure!(
            model.flat.iter().any(|item| item.name == name),
            "{name} is no longer declared in qmgr-ffi's abi; update flat::WRITTEN_BY_HAND"
        );
    }
    let mut config = cbindgen::Config {
        language: cbindgen::Language::C,
        cpp_compat: true,
        style: cbindgen::Style::Both,
        no_includes: true,
        usize_is_size_t: true,
        documentation: true,
        documentation_style: cbindgen::DocumentationStyle::C,
        ..cbindgen::Config::default()
    };
    config.export.include = model
        .flat
        .iter()
        .filter(|item| item.header == header && item.kind == FlatKind::Type)
        .filter(|item| !WRITTEN_BY_HAND.contains(&item.name.as_str()))
        .map(|item| item.name.clone())
        .collect();
    let interfaces = model
        .interfaces
        .iter()
        .flat_map(|i| [i.name.clone(), format!("{}Vtbl", i.name)]);
    let other_headers = model
        .flat
        .iter()
        .filter(|item| item.header != header)
        .map(|item| item.name.clone());
    config.export.exclude = interfaces
        .chain(other_headers)
        .chain(WRITTEN_BY_HAND.iter().map(|&n| n.to_owned()))
        .chain(RUST_ONLY.iter().map(|&n| n.to_owned()))
        // The C enums are written by `super::c_enums`.
        .chain(model.enum_names())
        .collect();
    let builder = cbindgen::Builder::new().with_config(config);
    // bits.h takes every export of the library (functions live outside `abi`); qmgr.h
    // only what its own module declares.
    let builder = match header {
        Header::Bits => builder.with_crate(ffi_crate),
        Header::Qmgr => builder.with_src(ffi_crate.join("src/abi/qmgr.rs")),
    };
    let bindings = builder
        .generate()
        .with_context(|| format!("cbindgen failed on {}", ffi_crate.display()))?;
    let mut text = Vec::new();
    bindings.write(&mut text);
    let text = String::from_utf8(text).context("cbindgen wrote invalid UTF-8")?;
    Ok(text.trim().to_owned())
}
