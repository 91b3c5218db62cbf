//! Snapshot enumerators.
