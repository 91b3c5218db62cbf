//! The C-facing declarations: types, interfaces and vtables, IIDs and CLSIDs, one module
//! per header. These definitions are the single source the generated headers come from.

pub mod bits;
pub mod qmgr;
pub mod types;
