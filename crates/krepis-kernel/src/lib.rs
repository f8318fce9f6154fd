//! The Krepis kernel: a native library with a plain C ABI.
//!
//! Every export is `extern "C"`, prefixed `krepis_`, and runs inside the panic
//! boundary of `panic`. The surface is rendered to `include/krepis.h` by
//! cbindgen; the Deno loader's symbol table and the ABI fingerprint are
//! generated from that header.
//!
//! Modules, from the bottom up, one layer a line (a module imports only
//! modules of a lower layer, never one of its own layer or a higher one;
//! tests/kernel_layering_test.ts checks it):
//! - `result`: result codes and `Failure`, the one error type;
//! - `panic`: the panic boundary;
//! - `error`: the last error message, where a failure is rendered to text once;
//! - `memory`, `fault`, `pin`, `build_info`, `proto`: leaves;
//! - `view`: the zero-copy data plane (kernel-owned bytes lent by id);
//! - `files`: opening files without hanging on a FIFO or overfilling memory;
//! - `journal`: the transactional file journal (feature `journal`);
//! - `server`: the server engine, a Pingora reverse proxy (feature `server`);
//! - `control`: the dispatcher, request handling in safe Rust (no pointers);
//! - `ffi`: every pointer-to-Rust conversion, with NULL and length checks;
//! - `abi`, `call`: the ABI version exports and the protobuf control-plane
//!   entry point with its buffer.
//!
//! Only `proto` is public (the conformance example encodes with it), and only
//! `KrepisResult` is re-exported; every other module is private to the crate,
//! its C surface reached through the `krepis_` symbols.

mod abi;
mod build_info;
mod call;
mod control;
mod error;
#[cfg(feature = "journal")]
mod fault;
mod ffi;
mod files;
#[cfg(feature = "journal")]
mod journal;
mod memory;
mod panic;
#[cfg(any(feature = "journal", feature = "server"))]
mod pin;
pub mod proto;
mod result;
#[cfg(feature = "server")]
mod server;
mod view;

pub use result::KrepisResult;
