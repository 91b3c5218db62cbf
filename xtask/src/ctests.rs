//! The C side of `cargo xtask test`: the committed headers match the generator and
//! mingw-w64's headers.

use crate::tally::Tally;
use crate::{compat, headers};

/// Runs the C checks, adding one result per check to `tally` and the name of each failed
/// one to `failures`.
pub fn run(tally: &mut Tally, failures: &mut Vec<String>) {
    println!("==> headers (include/ matches `cargo xtask headers`)");
    let verdict = match headers::stale_headers() {
        Ok(stale) if stale.is_empty() => Ok(()),
        Ok(stale) => Err(format!(
            "differ from the generator: {} (run `cargo xtask headers`)",
            stale.join(", ")
        )),
        Err(error) => Err(format!("{error:#}")),
    };
    count("headers", verdict, tally, failures);

    println!("==> compat (include/ against mingw-w64's headers)");
    let verdict = match compat::check() {
        Ok(report) => {
            print!("{}", report.text);
            if report.mismatches == 0 {
                Ok(())
            } else {
                Err(format!("{} declaration(s) differ", report.mismatches))
            }
        }
        Err(error) => Err(format!("{error:#}")),
    };
    count("compat", verdict, tally, failures);
}

fn count(name: &str, verdict: Result<(), String>, tally: &mut Tally, failures: &mut Vec<String>) {
    match verdict {
        Ok(()) => tally.passed += 1,
        Err(why) => {
            println!("FAILED {name}: {why}");
            tally.failed += 1;
            failures.push(name.to_owned());
        }
    }
}
