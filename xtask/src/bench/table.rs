//! Markdown tables for the results files.

use std::fmt::Write;

#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|&cell| cell.to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let line = |text: &mut String, cells: &[String]| {
            let _ = writeln!(text, "| {} |", cells.join(" | "));
        };
        line(&mut text, &self.header);
        line(&mut text, &vec!["---".to_owned(); self.header.len()]);
        for row in &self.rows {
            line(&mut text, row);
        }
        text
    }
}

/// `PASS` or `MISS`, for a target column.
pub fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

/// Bytes as megabytes (10^6 bytes), the unit the results files use.
#[expect(
    clippy::cast_precision_loss,
    reason = "byte counts in a benchmark are far below 2^52"
)]
pub fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
