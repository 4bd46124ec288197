#![no_main]
//! Any runbook or agent variant: see operator::properties::yaml_text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        operator::properties::yaml_text(text);
    }
});
