//! The last error message, kept per thread, as rustls-ffi and errno do.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use crate::panic::guard_value;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NUL bytes are
/// replaced so the message always reaches C intact.
pub fn set_last_error(message: &str) {
    let clean = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = clean);
}

/// Forgets this thread's last error.
pub fn clear_last_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = CString::default());
}

/// This thread's last error as an owned string.
pub fn last_error() -> String {
    LAST_ERROR.with(|slot| slot.borrow().to_string_lossy().into_owned())
}

/// The message of the last failed call on this thread, or "" after a call
/// that succeeded.
///
/// The pointer stays valid until the next kernel call on the same thread;
/// copy the string if you need it longer. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_last_error() -> *const c_char {
    guard_value(c"".as_ptr(), || {
        // The CString lives in a thread-local that is only replaced by the
        // next call on this thread, which is the documented lifetime.
        LAST_ERROR.with(|slot| slot.borrow().as_ptr())
    })
}
