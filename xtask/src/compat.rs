//! `cargo xtask compat`: our headers against mingw-w64's. Over every declaration both
//! sides have — interface vtables (slot names, order and types), IID/CLSID/LIBID values,
//! enum and `#define` constants, struct and union fields — the two must agree exactly;
//! what only one side declares is listed (ours with the source that declares it).
//!
//! Both sides are read by the same small C reader ([`cheader`]), so the check sees the
//! headers as a C compiler does, not as our generator meant them. GUID values come from
//! qmgr-ffi's abi (our headers only declare them `extern`).

mod cexpr;
mod cheader;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::headers::model::AbiModel;
use crate::{headers, project_root};
use cheader::{Declarations, Slot};

const MINGW_INCLUDE: &str = "/usr/share/mingw-w64/include";

/// The Windows SDK headers our headers stand for, in the order a program includes them.
const WINDOWS_HEADERS: [&str; 12] = [
    "bitsmsg.h",
    "bits.h",
    "bits1_5.h",
    "bits2_0.h",
    "bits2_5.h",
    "bits3_0.h",
    "bits4_0.h",
    "bits5_0.h",
    "bits10_1.h",
    "bits10_2.h",
    "bits10_3.h",
    "qmgr.h",
];

/// Our headers with declarations of their own (the others only include `bits.h`).
const OUR_HEADERS: [&str; 2] = ["bits.h", "qmgr.h"];

pub fn run(args: &[String]) -> Result<()> {
    ensure!(args.is_empty(), "usage: cargo xtask compat");
    let report = check()?;
    print!("{}", report.text);
    if report.mismatches == 0 {
        Ok(())
    } else {
        bail!(
            "{} declaration(s) differ from mingw-w64's",
            report.mismatches
        )
    }
}

pub struct Report {
    pub text: String,
    pub mismatches: usize,
}

pub fn check() -> Result<Report> {
    let mingw_dir = mingw_headers()?;
    let mut absent = Vec::new();
    let mut mingw_files = Vec::new();
    for name in WINDOWS_HEADERS {
        let path = mingw_dir.join(name);
        if path.exists() {
            mingw_files.push((name.to_owned(), path));
        } else {
            absent.push(name);
        }
    }
    let mingw = read_headers(&mingw_files)?;
    let include = headers::include_dir();
    let ours_files: Vec<(String, PathBuf)> = OUR_HEADERS
        .iter()
        .map(|name| ((*name).to_owned(), include.join(name)))
        .collect();
    let ours = read_headers(&ours_files)?;
    let model = AbiModel::load(&project_root().join("crates/qmgr-ffi/src"))?;
    let sources = Sources::load(&model)?;

    let mut report = Report {
        text: String::new(),
        mismatches: 0,
    };
    writeln!(
        report.text,
        "mingw-w64 headers: {} ({} read; not in mingw-w64: {})\n",
        mingw_dir.display(),
        mingw_files.len(),
        absent.join(", ")
    )?;
    compare_interfaces(&model, &ours, &mingw, &sources, &mut report)?;
    compare_guids(&model, &ours, &mingw, &sources, &mut report)?;
    compare_constants(&ours, &mingw, &sources, &mut report)?;
    compare_records(&ours, &mingw, &sources, &mut report)?;
    writeln!(
        report.text,
        "\nresult: {}",
        if report.mismatches == 0 {
            "every declaration both sides have matches".to_owned()
        } else {
            format!("{} mismatch(es)", report.mismatches)
        }
    )?;
    Ok(report)
}

/// The mingw-w64 headers directory, installing Debian's `mingw-w64-common` if needed.
fn mingw_headers() -> Result<PathBuf> {
    let dir = PathBuf::from(MINGW_INCLUDE);
    if dir.join("bits.h").exists() {
        return Ok(dir);
    }
    println!("{MINGW_INCLUDE}/bits.h is missing: installing mingw-w64-common");
    let install = || apt_get(&["install", "-y", "mingw-w64-common"]);
    if !install()? {
        ensure!(apt_get(&["update"])?, "apt-get update failed");
        ensure!(install()?, "apt-get install -y mingw-w64-common failed");
    }
    ensure!(
        dir.join("bits.h").exists(),
        "mingw-w64-common is installed but {MINGW_INCLUDE}/bits.h is still missing"
    );
    Ok(dir)
}

fn apt_get(args: &[&str]) -> Result<bool> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get (install mingw-w64-common by hand)")?;
    Ok(status.success())
}

fn read_headers(files: &[(String, PathBuf)]) -> Result<Declarations> {
    let mut declarations = Declarations::default();
    let mut origins = HashMap::new();
    for (name, path) in files {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        declarations
            .read(name, &text)
            .with_context(|| format!("in {}", path.display()))?;
        origins.extend(Declarations::define_origins(name, &text));
    }
    declarations.evaluate_defines(&origins);
    Ok(declarations)
}

/// Where qmgr declares something: the line of the Rust source (abi or HRESULT table).
struct Sources {
    files: Vec<(String, String)>,
}

impl Sources {
    fn load(model: &AbiModel) -> Result<Sources> {
        let root = project_root();
        let mut paths = model.sources.clone();
        paths.push(root.join("crates/qmgr-core/src/hresult.rs"));
        let files = paths
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let shown = path
                    .strip_prefix(&root)
                    .unwrap_or(path)
                    .display()
                    .to_string();
                Ok((shown, text))
            })
            .collect::<Result<_>>()?;
        Ok(Sources { files })
    }

    /// `file:line` of the declaration of `name`, or of the header when no Rust item is
    /// named so (the platform part of the headers).
    fn of(&self, name: &str, header: &str) -> String {
        let patterns = [
            format!("struct {name} "),
            format!("union {name} "),
            format!("type {name} "),
            format!("const {name}:"),
            format!("static {name}:"),
            format!("    {name} = "),
        ];
        for (file, text) in &self.files {
            if let Some(line) = text
                .lines()
                .position(|line| patterns.iter().any(|p| line.contains(p.as_str())))
            {
                return format!("{file}:{}", line + 1);
            }
        }
        format!("include/{header}")
    }
}

fn compare_interfaces(
    model: &AbiModel,
    ours: &Declarations,
    mingw: &Declarations,
    sources: &Sources,
    report: &mut Report,
) -> Result<()> {
    writeln!(report.text, "Interfaces (vtable slots: name, order, types)")?;
    writeln!(
        report.text,
        "  {:<52} {:<11} {:>6} {:>6} {:>8}  result",
        "interface", "mingw", "qmgr", "mingw", "matched"
    )?;
    let mut names: Vec<String> = model.interfaces.iter().map(|i| i.name.clone()).collect();
    for name in ours.vtables.keys().chain(mingw.vtables.keys()) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut details = String::new();
    for name in &names {
        let our = ours.vtables.get(name);
        let their = mingw.vtables.get(name);
        let (result, matched) = match (our, their) {
            (Some((our_slots, _)), Some((their_slots, _))) => {
                let matched = our_slots
                    .iter()
                    .zip(their_slots)
                    .filter(|(a, b)| a == b)
                    .count();
                if matched == our_slots.len() && matched == their_slots.len() {
                    ("match".to_owned(), matched.to_string())
                } else {
                    report.mismatches += 1;
                    describe_slot_differences(name, our_slots, their_slots, &mut details)?;
                    ("MISMATCH".to_owned(), matched.to_string())
                }
            }
            (Some(_), None) => {
                let doc = model
                    .interface(name)
                    .and_then(|i| i.doc.first().cloned())
                    .unwrap_or_default();
                (
                    format!("only qmgr: {} ({doc})", sources.of(name, "bits.h")),
                    "-".to_owned(),
                )
            }
            (None, Some(_)) => ("only mingw-w64".to_owned(), "-".to_owned()),
            (None, None) => ("not in either header".to_owned(), "-".to_owned()),
        };
        if model.interface(name).is_some() && our.is_none() {
            report.mismatches += 1;
            writeln!(details, "  {name}: declared in the abi but not in include/")?;
        }
        let count = |side: Option<&(Vec<Slot>, String)>| {
            side.map_or("-".to_owned(), |(slots, _)| slots.len().to_string())
        };
        writeln!(
            report.text,
            "  {:<52} {:<11} {:>6} {:>6} {:>8}  {result}",
            name,
            their.map_or("-", |(_, origin)| origin.as_str()),
            count(our),
            count(their),
            matched
        )?;
    }
    report.text.push_str(&details);
    report.text.push('\n');
    Ok(())
}

fn describe_slot_differences(
    name: &str,
    ours: &[Slot],
    theirs: &[Slot],
    out: &mut String,
) -> Result<()> {
    writeln!(out, "  {name}: slots differ")?;
    for index in 0..ours.len().max(theirs.len()) {
        let (our, their) = (ours.get(index), theirs.get(index));
        if our != their {
            let show = |slot: Option<&Slot>| {
                slot.map_or("(none)".to_owned(), |s| {
                    format!("{} {}({})", s.returns, s.name, s.params.join(", "))
                })
            };
            writeln!(
                out,
                "    slot {index}: qmgr {} | mingw-w64 {}",
                show(our),
                show(their)
            )?;
        }
    }
    Ok(())
}

fn compare_guids(
    model: &AbiModel,
    ours: &Declarations,
    mingw: &Declarations,
    sources: &Sources,
    report: &mut Report,
) -> Result<()> {
    let mut matched_values = 0;
    let mut matched_names = 0;
    let mut lines = String::new();
    for (name, (_, header)) in &ours.guids {
        let Some(ours_value) = model.guid(name).map(|g| g.value) else {
            report.mismatches += 1;
            writeln!(
                lines,
                "  {name}: declared in include/{header} but not defined by the abi"
            )?;
            continue;
        };
        match mingw.guids.get(name) {
            Some((Some(theirs), _)) if *theirs == ours_value => matched_values += 1,
            Some((Some(theirs), origin)) => {
                report.mismatches += 1;
                writeln!(
                    lines,
                    "  MISMATCH {name}: qmgr {ours_value}, mingw-w64 {origin} {theirs}"
                )?;
            }
            Some((None, _)) => matched_names += 1,
            None => writeln!(
                lines,
                "  only qmgr: {name} = {ours_value} ({})",
                sources.of(name, header)
            )?,
        }
    }
    for (name, (_, origin)) in &mingw.guids {
        if !ours.guids.contains_key(name) {
            writeln!(lines, "  only mingw-w64: {name} ({origin})")?;
        }
    }
    writeln!(
        report.text,
        "IIDs, CLSIDs, LIBIDs: {matched_values} values match; {matched_names} declared by \
         both (mingw-w64 gives no value: qmgr.h's legacy IDs)\n{lines}"
    )?;
    Ok(())
}

/// Equal values, or the same 32-bit pattern (`0x81001001` and `((HRESULT)0x81001001)`).
fn same_bits(a: i128, b: i128) -> bool {
    let fits_32 = |v: i128| (-(1i128 << 31)..(1i128 << 32)).contains(&v);
    a == b || (fits_32(a) && fits_32(b) && (a & 0xFFFF_FFFF) == (b & 0xFFFF_FFFF))
}

fn compare_constants(
    ours: &Declarations,
    mingw: &Declarations,
    sources: &Sources,
    report: &mut Report,
) -> Result<()> {
    let public = |name: &&String| !name.starts_with('_');
    let mut matched = 0;
    let mut only_ours = Vec::new();
    let mut lines = String::new();
    for (name, (value, header)) in ours.constants.iter().filter(|(n, _)| public(n)) {
        match mingw.constants.get(name) {
            Some((theirs, _)) if same_bits(*value, *theirs) => matched += 1,
            Some((theirs, origin)) => {
                report.mismatches += 1;
                writeln!(
                    lines,
                    "  MISMATCH {name}: qmgr {value:#X}, mingw-w64 {origin} {theirs:#X}"
                )?;
            }
            None => only_ours.push(format!("{name} ({})", sources.of(name, header))),
        }
    }
    let only_theirs: BTreeSet<String> = mingw
        .constants
        .iter()
        .filter(|(n, _)| public(n) && !ours.constants.contains_key(*n))
        .map(|(name, (_, origin))| format!("{name} ({origin})"))
        .collect();
    writeln!(
        report.text,
        "Constants (enumerators and #defines): {matched} match\n{lines}  only qmgr ({}):",
        only_ours.len()
    )?;
    for entry in &only_ours {
        writeln!(report.text, "    {entry}")?;
    }
    writeln!(report.text, "  only mingw-w64 ({}):", only_theirs.len())?;
    for entry in &only_theirs {
        writeln!(report.text, "    {entry}")?;
    }
    report.text.push('\n');
    Ok(())
}

fn compare_records(
    ours: &Declarations,
    mingw: &Declarations,
    sources: &Sources,
    report: &mut Report,
) -> Result<()> {
    let mut matched = Vec::new();
    let mut lines = String::new();
    for (name, (fields, header)) in &ours.records {
        match mingw.records.get(name) {
            Some((theirs, _)) if theirs == fields => matched.push(name.as_str()),
            Some((theirs, origin)) => {
                report.mismatches += 1;
                let show = |fields: &[cheader::Field]| {
                    fields
                        .iter()
                        .map(|f| format!("{} {}", f.ty, f.name))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                writeln!(
                    lines,
                    "  MISMATCH {name}: qmgr {{ {} }} | mingw-w64 {origin} {{ {} }}",
                    show(fields),
                    show(theirs)
                )?;
            }
            None => writeln!(lines, "  only qmgr: {name} ({})", sources.of(name, header))?,
        }
    }
    for (name, (_, origin)) in &mingw.records {
        if !ours.records.contains_key(name) {
            writeln!(lines, "  only mingw-w64: {name} ({origin})")?;
        }
    }
    writeln!(
        report.text,
        "Structs and unions (fields in order): {} match ({})\n{lines}",
        matched.len(),
        matched.join(", ")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declarations(text: &str) -> Declarations {
        let mut declarations = Declarations::default();
        declarations.read("x.h", text).unwrap();
        declarations.evaluate_defines(&Declarations::define_origins("x.h", text));
        declarations
    }

    const THING: &str = "#define LIMIT 0x10\n\
        typedef struct IThingVtbl {\n\
            HRESULT (STDMETHODCALLTYPE *Go)(IThing *This);\n\
            HRESULT (STDMETHODCALLTYPE *Stop)(IThing *This, DWORD Why);\n\
        } IThingVtbl;\n\
        typedef struct PAIR { int First; int Second; } PAIR;\n";

    fn compare(ours: &str, theirs: &str) -> Report {
        let (ours, theirs) = (declarations(ours), declarations(theirs));
        let model = AbiModel {
            interfaces: Vec::new(),
            guids: Vec::new(),
            flat: Vec::new(),
            records: Vec::new(),
            enums: Vec::new(),
            sources: Vec::new(),
        };
        let sources = Sources { files: Vec::new() };
        let mut report = Report {
            text: String::new(),
            mismatches: 0,
        };
        compare_interfaces(&model, &ours, &theirs, &sources, &mut report).unwrap();
        compare_constants(&ours, &theirs, &sources, &mut report).unwrap();
        compare_records(&ours, &theirs, &sources, &mut report).unwrap();
        report
    }

    #[test]
    fn identical_declarations_match() {
        let report = compare(THING, THING);
        assert_eq!(report.mismatches, 0, "{}", report.text);
        assert!(report.text.contains("IThing"));
        assert!(report.text.contains("1 match"), "{}", report.text);
    }

    #[test]
    fn swapped_slots_changed_values_and_reordered_fields_are_mismatches() {
        let theirs = THING
            .replace("0x10", "0x20")
            .replace("int First; int Second;", "int Second; int First;")
            .replace(
                "*Go)(IThing *This);\nHRESULT (STDMETHODCALLTYPE *Stop)(IThing *This, DWORD Why);",
                "*Stop)(IThing *This, DWORD Why);\nHRESULT (STDMETHODCALLTYPE *Go)(IThing *This);",
            );
        assert!(theirs.contains("*Stop)(IThing *This, DWORD Why);\nHRESULT"));
        let report = compare(THING, &theirs);
        assert_eq!(report.mismatches, 3, "{}", report.text);
        assert!(
            report
                .text
                .contains("slot 0: qmgr HRESULT Go() | mingw-w64 HRESULT Stop(DWORD)"),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains("MISMATCH LIMIT: qmgr 0x10, mingw-w64 x.h 0x20")
        );
        assert!(report.text.contains("MISMATCH PAIR"));
    }

    #[test]
    fn a_changed_parameter_type_is_a_mismatch() {
        let report = compare(THING, &THING.replace("DWORD Why", "ULONG Why"));
        assert_eq!(report.mismatches, 1, "{}", report.text);
    }

    #[test]
    fn hresults_compare_by_bit_pattern() {
        assert!(same_bits(0x8100_1001, -2_130_702_335));
        assert!(same_bits(16, 16));
        assert!(!same_bits(16, 17));
        assert!(!same_bits(i128::from(u64::MAX), -1));
    }

    #[test]
    fn sources_point_at_the_declaring_line() {
        let sources = Sources {
            files: vec![(
                "abi/bits.rs".into(),
                "// x\npub const BG_NOTIFY_DISABLE: ULONG = 4;\n".into(),
            )],
        };
        assert_eq!(sources.of("BG_NOTIFY_DISABLE", "bits.h"), "abi/bits.rs:2");
        assert_eq!(sources.of("SUCCEEDED", "bits.h"), "include/bits.h");
    }
}
