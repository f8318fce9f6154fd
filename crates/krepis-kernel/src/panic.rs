//! The panic boundary: no panic unwinds into foreign code.
//!
//! Every `extern "C"` body runs in [`guard`]. A panic is caught and the
//! export answers the [`PanicValue`] of its return type: a result code
//! becomes `KREPIS_RESULT_PANIC` with the panic as the thread's last error
//! (see `error`), a number 0, a string pointer the empty string.
//!
//! This module imports nothing from the crate: the value a type answers is
//! given by the module that owns the type's meaning.

use std::any::Any;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What an export answers when its body panicked, derived from its return
/// type so that no call site writes its own fallback.
pub trait PanicValue {
    /// The value for a panic whose message is `message`.
    fn on_panic(message: &str) -> Self;
}

impl PanicValue for u32 {
    fn on_panic(_message: &str) -> Self {
        0
    }
}

/// Exports that answer a static string answer the empty string, never NULL.
impl PanicValue for *const c_char {
    fn on_panic(_message: &str) -> Self {
        c"".as_ptr()
    }
}

/// Runs an export body; a panic becomes the return type's [`PanicValue`].
pub fn guard<T: PanicValue>(body: impl FnOnce() -> T) -> T {
    // AssertUnwindSafe: after a panic the kernel keeps no state that a
    // half-finished call could have corrupted (requests are independent).
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| T::on_panic(panic_message(&*payload)))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "no message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_the_value_of_the_return_type() {
        assert_eq!(guard::<u32>(|| panic!("boom")), 0);
        let text = guard::<*const c_char>(|| panic!("boom"));
        // SAFETY: the panic value is a static NUL-terminated string.
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(text) }, c"");
        assert_eq!(guard(|| 7u32), 7);
    }
}
