//! The ABI version, the ABI fingerprint and the lock-step version.
//!
//! The ABI version is defined here and nowhere else. Bump the minor for
//! additions to the exported surface, the major for removals or changed
//! signatures. `krepis_abi_fingerprint()` is computed by build.rs from the
//! header cbindgen renders, so it changes whenever a name or signature does.

use std::ffi::{CStr, c_char};

use crate::panic::guard;

include!(concat!(env!("OUT_DIR"), "/abi_fingerprint.rs"));

/// The ABI major version: a loader refuses a kernel whose major differs.
pub const KREPIS_ABI_MAJOR: u16 = 1;

/// The ABI minor version: a loader refuses a kernel older than it needs.
pub const KREPIS_ABI_MINOR: u16 = 3;

/// The lock-step version as a C string.
pub const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
};

/// The ABI version this kernel implements, packed as `major << 16 | minor`.
///
/// Read it before binding any other symbol.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_abi_version() -> u32 {
    guard(|| (u32::from(KREPIS_ABI_MAJOR) << 16) | u32::from(KREPIS_ABI_MINOR))
}

/// The ABI fingerprint: SHA-256, as 64 lowercase hex digits, of the
/// normalized declarations of krepis.h (names, signatures and types) and of
/// the control-plane schema krepis.proto.
///
/// Two kernels with the same ABI version but another exported surface have
/// different fingerprints. The string is static and NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_abi_fingerprint() -> *const c_char {
    guard(|| ABI_FINGERPRINT.as_ptr())
}

/// The lock-step version, e.g. "0.1.0", as a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_version() -> *const c_char {
    guard(|| VERSION.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_packs_major_and_minor() {
        let packed = krepis_abi_version();
        assert_eq!(packed >> 16, u32::from(KREPIS_ABI_MAJOR));
        assert_eq!(packed & 0xffff, u32::from(KREPIS_ABI_MINOR));
    }

    #[test]
    fn fingerprint_is_64_hex_digits() {
        let fingerprint = ABI_FINGERPRINT.to_str().unwrap();
        assert_eq!(fingerprint.len(), 64);
        assert!(
            fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn version_is_the_package_version() {
        assert_eq!(VERSION.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
