//! Keeping the kernel mapped for the life of the process.
//!
//! Threads the kernel starts (sled's workers, the server engine's timer)
//! run kernel code after the call that started them returns. If the
//! library were unmapped under them (`Kernel.close()` calls `dlclose` or
//! `FreeLibrary`), the process would crash; once such a thread exists the
//! kernel pins itself, so closing it only forgets its symbols.

/// Pins the kernel library in memory; idempotent and cheap after the first call.
pub fn keep_loaded() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(pin);
}

#[cfg(unix)]
fn pin() {
    // SAFETY: dladdr only reads the loader's tables for an address inside
    // this library (this function) and fills `info`, a valid out-pointer.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let found = unsafe { libc::dladdr(pin as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return;
    }
    // SAFETY: dli_fname is the NUL-terminated path of this library, already
    // loaded (RTLD_NOLOAD: no new load, no constructors run); NODELETE marks
    // it never to be unmapped. The returned handle is leaked on purpose.
    unsafe {
        libc::dlopen(
            info.dli_fname,
            libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        )
    };
}

#[cfg(windows)]
fn pin() {
    use std::ffi::c_void;
    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut *mut c_void) -> i32;
    }
    const PIN: u32 = 0x1;
    const FROM_ADDRESS: u32 = 0x4;
    let mut module = std::ptr::null_mut();
    // SAFETY: with FROM_ADDRESS, `name` is an address inside this module
    // (this function); `module` is a valid out-pointer. Pinning only raises
    // the module's load count for good.
    unsafe { GetModuleHandleExW(PIN | FROM_ADDRESS, pin as *const () as *const u16, &mut module) };
}
