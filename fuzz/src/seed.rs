//! Writes seed corpora for the fuzz targets from `proto/vectors`:
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seed` (from the project root).
//!
//! - `frame_decode`: every valid and invalid frame, and the RPC profile's headers and messages;
//! - `session_frames`: every session case, its peer frames as message records for its side;
//! - every target: the inputs in `fuzz/regressions` named after it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wsmux_fuzz::push_record;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vectors = root.join("../proto/vectors");
    let load = |name: &str| -> Vec<Value> {
        let text = fs::read_to_string(vectors.join(name)).expect("read a vector file");
        match serde_json::from_str(&text).expect("vector JSON") {
            Value::Array(cases) => cases,
            Value::Object(groups) => groups.into_values().flat_map(array).collect(),
            _ => panic!("{name}: neither an array nor an object of arrays"),
        }
    };
    let corpus = |target: &str| -> PathBuf {
        let dir = root.join("corpus").join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        dir
    };

    let frames = corpus("frame_decode");
    let mut n = 0;
    for file in ["frames.json", "invalid.json", "packs.json", "rpc.json"] {
        for case in load(file) {
            for hex in hex_fields(&case) {
                fs::write(frames.join(format!("{}-{n}", name(&case))), hex).expect("write");
                n += 1;
            }
        }
    }

    let sessions = corpus("session_frames");
    let mut m = 0;
    for case in load("sessions.json") {
        let side = u8::from(case["side"] == "client");
        let mut input = vec![side];
        for frame in array(case["peer_frames"].clone()) {
            push_record(&mut input, 0, &decode_hex(frame.as_str().expect("a hex frame")));
        }
        // Then let the application serve what came, and time pass.
        push_record(&mut input, 5, &[0; 64]);
        push_record(&mut input, 4, &[]);
        fs::write(sessions.join(name(&case)), input).expect("write");
        m += 1;
    }
    // Inputs that once failed (fuzz/regressions/TARGET-what) join their target's corpus, so
    // every run replays them first.
    let mut r = 0;
    for entry in fs::read_dir(root.join("regressions")).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let target = ["frame_decode", "session_frames", "channel_ops"]
            .into_iter()
            .find(|t| file.starts_with(&format!("{t}-")));
        if let Some(target) = target {
            fs::copy(entry.path(), corpus(target).join(&file)).expect("copy a regression");
            r += 1;
        }
    }
    println!("frame_decode: {n} seeds; session_frames: {m} seeds; regressions: {r}");
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn name(case: &Value) -> String {
    case["name"].as_str().unwrap_or("case").to_owned()
}

/// The bytes of every `hex`-like string field of a case.
fn hex_fields(case: &Value) -> Vec<Vec<u8>> {
    let Value::Object(fields) = case else { return Vec::new() };
    fields
        .iter()
        .filter(|(k, _)| k.as_str() == "hex" || k.ends_with("_hex"))
        .filter_map(|(_, v)| v.as_str())
        .map(decode_hex)
        .collect()
}

fn decode_hex(s: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit: {c}"),
    };
    s.as_bytes().chunks(2).map(|p| digit(p[0]) << 4 | digit(p[1])).collect()
}
