//! Payments (SPEC §3).
