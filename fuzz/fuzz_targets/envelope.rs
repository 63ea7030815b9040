#![no_main]
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = twinwire_protocol::Envelope::from_slice(data) {
        let _ = envelope.signal();
        let json = envelope.to_json();
        // a parsed envelope serialises to JSON that parses back to an equal envelope
        let again = twinwire_protocol::Envelope::from_json(json.clone()).expect("re-parse");
        assert_eq!(again.to_json(), json);
    }
});
