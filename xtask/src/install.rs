//! `cargo xtask install [--prefix DIR]`: the binaries, the C library with its headers and
//! pkg-config file (see [`crate::install_library`]), and the systemd user unit.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

/// The binaries a user installs, with the packages that build them.
const BINARIES: [(&str, &str); 1] = [("qmgrd", "qmgr-service")];

pub fn run(args: &[String]) -> Result<()> {
    let prefix = match args {
        [] => default_prefix()?,
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask install [--prefix DIR]"),
    };
    let prefix = std::path::absolute(&prefix).context("the prefix cannot be made absolute")?;
    let mut build = cargo();
    build.args(["build", "--release", "--locked"]);
    for (_, package) in BINARIES {
        build.args(["-p", package]);
    }
    if !build.status()?.success() {
        bail!("the release build failed");
    }
    let bin_dir = prefix.join("bin");
    fs::create_dir_all(&bin_dir).with_context(|| format!("cannot create {}", bin_dir.display()))?;
    for (binary, _) in BINARIES {
        let from = crate::target_dir().join("release").join(binary);
        copy(&from, &bin_dir.join(binary))?;
    }
    crate::install_library::install(&prefix)?;
    let unit_dir = prefix.join("share/systemd/user");
    fs::create_dir_all(&unit_dir)
        .with_context(|| format!("cannot create {}", unit_dir.display()))?;
    let template = fs::read_to_string(project_root().join("contrib/systemd/qmgrd.service"))
        .context("cannot read contrib/systemd/qmgrd.service")?;
    let unit = unit_dir.join("qmgrd.service");
    fs::write(&unit, render_unit(&template, &bin_dir))
        .with_context(|| format!("cannot write {}", unit.display()))?;
    println!("installed: {}", unit.display());
    println!(
        "start at login: systemctl --user daemon-reload && systemctl --user enable --now qmgrd"
    );
    Ok(())
}

fn default_prefix() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; give --prefix")?;
    Ok(PathBuf::from(home).join(".local"))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    // Through a temporary name, so a running copy is replaced, not overwritten in place.
    let temporary = to.with_extension("new");
    fs::copy(from, &temporary)
        .with_context(|| format!("cannot copy {} to {}", from.display(), temporary.display()))?;
    fs::rename(&temporary, to).with_context(|| format!("cannot install {}", to.display()))?;
    println!("installed: {}", to.display());
    Ok(())
}

fn render_unit(template: &str, bin_dir: &Path) -> String {
    template.replace("@BINDIR@", &bin_dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_points_at_the_installed_daemon() {
        let template =
            fs::read_to_string(project_root().join("contrib/systemd/qmgrd.service")).unwrap();
        let unit = render_unit(&template, Path::new("/opt/q/bin"));
        assert!(
            unit.contains("ExecStart=/opt/q/bin/qmgrd --foreground"),
            "{unit}"
        );
        assert!(unit.contains("Restart=on-failure"));
        assert!(!unit.contains('@'), "every placeholder is filled: {unit}");
    }
}
