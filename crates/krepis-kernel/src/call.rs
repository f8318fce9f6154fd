//! The control-plane entry point and the kernel-owned response buffer.

use crate::control;
use crate::error::{clear_last_error, set_last_error};
use crate::ffi::{out_buffer, request_bytes};
use crate::panic::guard;
use crate::result::KrepisResult;

/// Bytes owned by the kernel. Release with `krepis_buffer_free()`.
#[repr(C)]
#[derive(Debug)]
pub struct KrepisBuffer {
    /// Start of the bytes; NULL when empty or freed.
    pub ptr: *mut u8,
    /// Number of bytes at `ptr`.
    pub len: usize,
}

/// Handles one protobuf-encoded `krepis.v1.Request`.
///
/// On `KREPIS_RESULT_OK`, `*response` receives the encoded
/// `krepis.v1.Response` in a kernel-owned buffer that the caller releases
/// with `krepis_buffer_free()`. On any other result `*response` is left
/// untouched and `krepis_last_error()` describes the failure.
///
/// `request` may be NULL only when `request_len` is 0.
///
/// # Safety
/// `request` must point to `request_len` readable bytes (or be NULL with a
/// length of 0); `response` must be NULL or point to a writable
/// `KrepisBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_call(
    request: *const u8,
    request_len: usize,
    response: *mut KrepisBuffer,
) -> KrepisResult {
    guard(|| {
        // SAFETY: the caller's contract above is request_bytes' contract.
        let outcome = unsafe { out_buffer(response) }.and_then(|out| {
            // SAFETY: as above.
            let bytes = unsafe { request_bytes(request, request_len) }?;
            let encoded = control::handle(bytes)?;
            let boxed = encoded.into_boxed_slice();
            out.len = boxed.len();
            out.ptr = Box::into_raw(boxed).cast::<u8>();
            Ok(())
        });
        match outcome {
            Ok(()) => {
                clear_last_error();
                KrepisResult::Ok
            }
            Err((code, message)) => {
                set_last_error(&message);
                code
            }
        }
    })
}

/// Releases a buffer filled by `krepis_call()` and resets it to empty.
///
/// Accepts NULL, an empty buffer, and a buffer already freed: each is a
/// no-op.
///
/// # Safety
/// `buffer` must be NULL or point to a `KrepisBuffer` that was filled by
/// `krepis_call()` (or zeroed) and not modified since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_buffer_free(buffer: *mut KrepisBuffer) {
    let _ = guard(|| {
        // SAFETY: NULL is checked by as_mut; otherwise the caller promises a
        // valid KrepisBuffer.
        let Some(buffer) = (unsafe { buffer.as_mut() }) else {
            return KrepisResult::Ok;
        };
        if !buffer.ptr.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(buffer.ptr, buffer.len);
            // SAFETY: ptr and len came from Box::into_raw of a boxed slice in
            // krepis_call and have not been freed (freeing resets them).
            drop(unsafe { Box::from_raw(slice) });
        }
        buffer.ptr = std::ptr::null_mut();
        buffer.len = 0;
        KrepisResult::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last_error;

    fn empty() -> KrepisBuffer {
        KrepisBuffer {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    #[test]
    fn null_response_is_refused() {
        // SAFETY: NULL response is part of the contract.
        let result = unsafe { krepis_call(std::ptr::null(), 0, std::ptr::null_mut()) };
        assert_eq!(result, KrepisResult::NullPointer);
        assert_eq!(last_error(), "response is NULL");
    }

    #[test]
    fn panic_is_caught_and_reported() {
        // krepis.v1.Request { fail: { message: "x", panic: true } }
        let request = [0x1a, 0x05, 0x0a, 0x01, b'x', 0x10, 0x01];
        let mut out = empty();
        // SAFETY: request and out are valid for the call.
        let result = unsafe { krepis_call(request.as_ptr(), request.len(), &mut out) };
        assert_eq!(result, KrepisResult::Panic);
        assert_eq!(last_error(), "kernel panicked: x");
        assert!(out.ptr.is_null(), "outputs are written only on success");
    }

    #[test]
    fn free_twice_is_harmless() {
        // krepis.v1.Request { echo: { payload: "hi" } }
        let request = [0x12, 0x04, 0x0a, 0x02, b'h', b'i'];
        let mut out = empty();
        // SAFETY: request and out are valid for the call.
        assert_eq!(
            unsafe { krepis_call(request.as_ptr(), request.len(), &mut out) },
            KrepisResult::Ok
        );
        assert_eq!(last_error(), "");
        // SAFETY: out was filled by krepis_call; freeing resets it.
        unsafe {
            krepis_buffer_free(&mut out);
            krepis_buffer_free(&mut out);
            krepis_buffer_free(std::ptr::null_mut());
        }
        assert!(out.ptr.is_null());
    }
}
