//! Any bytes as a /predict body: the parser answers Ok or a 4xx error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentimiento::request::parse_predict;

fuzz_target!(|body: &[u8]| {
    if let Err(e) = parse_predict(body) {
        assert!((400..500).contains(&e.status()), "{e}");
    }
});
