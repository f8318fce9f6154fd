//! Decodes and re-encodes protobuf messages with the kernel's prost code, for
//! the conformance tests (`tests/proto_conformance_test.ts`).
//!
//! stdin: frames of `[kind: u8][length: u32 LE][bytes]`, where kind 0 is
//! `krepis.conformance.v1.Everything`, 1 `krepis.v1.Request` and 2
//! `krepis.v1.Response`. stdout: one frame per input, `[0][length][bytes]`
//! with the re-encoded message, or `[1][length][UTF-8 error]` when prost
//! refuses it.

use std::io::{Read, Write};

use krepis_kernel::proto::{Request, Response};
use prost::Message;

#[allow(missing_docs, clippy::all)]
mod conformance {
    include!(concat!(env!("OUT_DIR"), "/krepis.conformance.v1.rs"));
}

fn roundtrip<M: Message + Default>(bytes: &[u8]) -> Result<Vec<u8>, String> {
    M::decode(bytes).map(|m| m.encode_to_vec()).map_err(|e| e.to_string())
}

fn main() {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("read stdin");
    let mut output = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let kind = input[pos];
        let length = u32::from_le_bytes(input[pos + 1..pos + 5].try_into().expect("4 bytes")) as usize;
        let bytes = &input[pos + 5..pos + 5 + length];
        pos += 5 + length;
        let result = match kind {
            0 => roundtrip::<conformance::Everything>(bytes),
            1 => roundtrip::<Request>(bytes),
            2 => roundtrip::<Response>(bytes),
            other => panic!("unknown kind {other}"),
        };
        let (status, body) = match result {
            Ok(encoded) => (0u8, encoded),
            Err(error) => (1u8, error.into_bytes()),
        };
        output.push(status);
        output.extend_from_slice(&(body.len() as u32).to_le_bytes());
        output.extend_from_slice(&body);
    }
    std::io::stdout().write_all(&output).expect("write stdout");
}
