//! Orders (SPEC §3).
