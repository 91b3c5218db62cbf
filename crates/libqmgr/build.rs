//! Gives libqmgr.so a soname when `QMGR_SONAME` says which (`cargo xtask install` and
//! `cargo xtask deb` set `libqmgr.so.0`, in a target directory of their own). The ordinary
//! build has none, so programs linked against the build tree (`-L target/debug -lqmgr`)
//! ask for `libqmgr.so`, which is there.

fn main() {
    println!("cargo:rerun-if-env-changed=QMGR_SONAME");
    if let Some(soname) = std::env::var_os("QMGR_SONAME").filter(|name| !name.is_empty()) {
        let soname = soname.to_str().expect("QMGR_SONAME is UTF-8");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
}
