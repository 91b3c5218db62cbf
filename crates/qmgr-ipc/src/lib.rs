//! The wire between clients and qmgrd.
