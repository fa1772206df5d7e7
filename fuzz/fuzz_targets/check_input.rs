//! `recourse check` on arbitrary bytes: it must answer (a decision or an
//! input error), never panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A fixed clock keeps a crash reproducible from its input alone.
    let clock = chrono::DateTime::<chrono::Utc>::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let _ = recourse_core::scenario::check_bytes(data, clock);
});
