#![no_main]
//! Anthropic's and OpenAI's streams, cut anywhere: see operator::properties::model_stream.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    operator::properties::model_stream(data);
});
