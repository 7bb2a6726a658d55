//! Query strings: percent-decoding never panics and never grows its input; percent-encoding
//! any bytes then decoding gives them back (with `+` read as a space); a path built from
//! encoded parameters yields exactly the values of the asked name, in order, whatever the
//! fragment.
#![no_main]

use canary_tagger::request::{percent_decode, query_values};
use canary_tagger_fuzz::input::decode;
use canary_tagger_fuzz::parsers::QueryInput;
use canary_tagger_fuzz::percent_encode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode::<QueryInput>(data) else {
        return;
    };
    let name = input.name.bytes();
    let path = &input.path.0;
    assert!(percent_decode(path).len() <= path.len());
    for value in query_values(path, &name) {
        assert!(value.len() <= path.len());
    }

    // Round trips.
    assert_eq!(
        percent_decode(&percent_encode(path)).as_ref(),
        path.as_slice()
    );
    let form_encoded: Vec<u8> = path
        .iter()
        .flat_map(|&b| {
            if b == b' ' {
                vec![b'+']
            } else {
                percent_encode(&[b])
            }
        })
        .collect();
    assert_eq!(percent_decode(&form_encoded).as_ref(), path.as_slice());

    let mut built = b"/p".to_vec();
    let mut expected = Vec::new();
    for (i, (key, value)) in input.params.iter().enumerate() {
        let (key, value) = (key.bytes(), value.bytes());
        built.push(if i == 0 { b'?' } else { b'&' });
        built.extend(percent_encode(&key));
        built.push(b'=');
        built.extend(percent_encode(&value));
        if key == name {
            expected.push(value);
        }
    }
    if let Some(fragment) = &input.fragment {
        built.push(b'#');
        built.extend(fragment.bytes());
    }
    let found: Vec<Vec<u8>> = query_values(&built, &name)
        .map(|v| v.into_owned())
        .collect();
    assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(&built));
});
