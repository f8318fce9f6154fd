//! Every conversion from a foreign pointer to a Rust reference lives here,
//! each with its NULL and length checks.

use crate::result::{Failure, KrepisResult};

/// The largest request the kernel accepts, in bytes (64 MiB).
pub const KREPIS_MAX_REQUEST_LEN: usize = 64 * 1024 * 1024;

/// Borrows `len` bytes at `ptr`.
///
/// NULL with a length of zero is an empty slice; NULL with a non-zero
/// length, or a length above [`KREPIS_MAX_REQUEST_LEN`], is refused.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay valid and
/// unmodified for `'a`.
pub unsafe fn request_bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len > KREPIS_MAX_REQUEST_LEN {
        return Err(Failure::new(
            KrepisResult::InvalidLength,
            format!("Cannot read the request: its length {len} exceeds the limit of {KREPIS_MAX_REQUEST_LEN} bytes"),
        ));
    }
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::new(
                KrepisResult::NullPointer,
                format!("Cannot read the request: request is NULL but request_len is {len}"),
            ))
        };
    }
    // SAFETY: ptr is non-NULL, len is at most 64 MiB (so below isize::MAX),
    // and the caller promises len readable bytes live for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows the caller's response buffer (a `KrepisBuffer`; generic so that
/// this module needs nothing from the exports that use it).
///
/// # Safety
/// A non-NULL `ptr` must point to a writable, aligned `T` that no one else
/// accesses for `'a`.
pub unsafe fn out_buffer<'a, T>(ptr: *mut T) -> Result<&'a mut T, Failure> {
    // SAFETY: as_mut checks NULL; the caller promises a valid, exclusive,
    // aligned T otherwise.
    unsafe { ptr.as_mut() }
        .ok_or_else(|| Failure::new(KrepisResult::NullPointer, "Cannot write the response: response is NULL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_with_zero_length_is_empty() {
        // SAFETY: NULL with length 0 never dereferences.
        assert_eq!(unsafe { request_bytes(std::ptr::null(), 0) }.unwrap(), &[] as &[u8]);
    }

    #[test]
    fn null_with_a_length_is_refused() {
        // SAFETY: the NULL check runs before any dereference.
        let err = unsafe { request_bytes(std::ptr::null(), 3) }.unwrap_err();
        assert_eq!(err.code, KrepisResult::NullPointer);
    }

    #[test]
    fn oversized_length_is_refused() {
        let byte = 0u8;
        // SAFETY: the length check runs before any dereference.
        let err = unsafe { request_bytes(&byte, usize::MAX) }.unwrap_err();
        assert_eq!(err.code, KrepisResult::InvalidLength);
    }
}
