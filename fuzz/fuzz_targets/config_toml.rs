#![no_main]
//! Any config file: see operator::properties::config_text.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        operator::properties::config_text(text);
    }
});
