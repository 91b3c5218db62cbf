//! The HRESULT constants of the headers, read from the `hresults!` table of
//! `crates/qmgr-core/src/hresult.rs`, where the library takes its codes from too.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitInt, LitStr, Token};

use super::model::Header;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HresultConstant {
    pub name: String,
    pub bits: u32,
    pub description: String,
}

impl HresultConstant {
    /// The header that declares it, or `None` for the table's own names of Win32 codes
    /// (`HRESULT_FILE_NOT_FOUND`), which Windows code spells `HRESULT_FROM_WIN32(ERROR_…)`.
    pub fn header(&self) -> Option<Header> {
        if self.name.starts_with("HRESULT_") {
            None
        } else if self.name.starts_with("QM_") {
            Some(Header::Qmgr)
        } else {
            Some(Header::Bits)
        }
    }

    /// `#define NAME ((HRESULT)0x…)`, typed so comparisons with an HRESULT are clean.
    pub fn definition(&self) -> String {
        format!("((HRESULT)0x{:08X})", self.bits)
    }
}

struct Table(Vec<HresultConstant>);

impl Parse for Table {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut constants = Vec::new();
        while !input.is_empty() {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let bits: LitInt = input.parse()?;
            input.parse::<Token![,]>()?;
            let description: LitStr = input.parse()?;
            input.parse::<Token![;]>()?;
            constants.push(HresultConstant {
                name: name.to_string(),
                bits: bits.base10_parse()?,
                description: description.value(),
            });
        }
        Ok(Table(constants))
    }
}

/// Every constant of the table, in table order.
pub fn load(hresult_rs: &Path) -> Result<Vec<HresultConstant>> {
    let text = fs::read_to_string(hresult_rs)
        .with_context(|| format!("cannot read {}", hresult_rs.display()))?;
    parse(&text).with_context(|| format!("in {}", hresult_rs.display()))
}

fn parse(source: &str) -> Result<Vec<HresultConstant>> {
    let file = syn::parse_file(source)?;
    let mut tables = file.items.iter().filter_map(|item| match item {
        syn::Item::Macro(invocation) if invocation.mac.path.is_ident("hresults") => {
            Some(&invocation.mac)
        }
        _ => None,
    });
    let Some(table) = tables.next() else {
        bail!("no `hresults! {{ … }}` table");
    };
    ensure!(tables.next().is_none(), "more than one `hresults!` table");
    let Table(constants) = table
        .parse_body()
        .context("the hresults! table is not `NAME = 0x…, \"text\";` lines")?;
    ensure!(!constants.is_empty(), "the hresults! table is empty");
    Ok(constants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_values_and_descriptions() {
        let source = r#"
            macro_rules! hresults { ($($t:tt)*) => {}; }
            hresults! {
                // A comment between entries.
                S_OK = 0x0000_0000, "Fine.";
                HRESULT_FILE_NOT_FOUND = 0x8007_0002, "Gone.";
                QM_E_ITEM_NOT_FOUND = 0x8100_1004, "No item.";
                BG_E_NOT_FOUND = 0x8020_0001, "No job.";
            }
        "#;
        let constants = parse(source).unwrap();
        let summary: Vec<_> = constants
            .iter()
            .map(|c| (c.name.as_str(), c.bits, c.header()))
            .collect();
        assert_eq!(
            summary,
            [
                ("S_OK", 0, Some(Header::Bits)),
                ("HRESULT_FILE_NOT_FOUND", 0x8007_0002, None),
                ("QM_E_ITEM_NOT_FOUND", 0x8100_1004, Some(Header::Qmgr)),
                ("BG_E_NOT_FOUND", 0x8020_0001, Some(Header::Bits)),
            ]
        );
        assert_eq!(constants[3].definition(), "((HRESULT)0x80200001)");
        assert_eq!(constants[3].description, "No job.");
    }

    #[test]
    fn a_malformed_entry_is_an_error() {
        let source = "hresults! { S_OK = 0, \"x\" }";
        assert!(parse(source).is_err());
    }
}
