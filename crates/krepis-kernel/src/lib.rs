//! The Krepis kernel: a native library with a plain C ABI.
//!
//! Every export is `extern "C"`, prefixed `krepis_`, and runs inside the panic
//! boundary of [`panic`]. The surface is rendered to `include/krepis.h` by
//! cbindgen; the Deno loader's symbol table and the ABI fingerprint are
//! generated from that header.
//!
//! Modules:
//! - [`abi`]: ABI version, fingerprint and lock-step version exports;
//! - [`call`]: the protobuf control-plane entry point and its buffer;
//! - [`control`]: request handling in safe Rust (no pointers);
//! - [`result`]: result codes; [`error`]: the last error message;
//! - [`ffi`]: every pointer-to-Rust conversion, with NULL and length checks;
//! - [`panic`]: the panic boundary;
//! - [`view`]: the zero-copy data plane (kernel-owned bytes lent by id);
//! - [`files`]: opening files without hanging on a FIFO or overfilling memory;
//! - [`journal`]: the transactional file journal (feature `journal`);
//! - [`server`]: the server engine, a Pingora reverse proxy (feature `server`);
//! - [`pin`]: keeping the library mapped once its threads run;
//! - [`fault`]: pause points for the crash tests (debug builds only).

pub mod abi;
pub mod build_info;
pub mod call;
pub mod control;
pub mod error;
pub mod fault;
pub mod ffi;
pub mod files;
#[cfg(feature = "journal")]
pub mod journal;
pub mod memory;
pub mod panic;
pub mod pin;
pub mod proto;
pub mod result;
#[cfg(feature = "server")]
pub mod server;
pub mod view;

pub use result::KrepisResult;
