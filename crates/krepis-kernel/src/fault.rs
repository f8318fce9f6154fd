//! Pause points for the crash tests, in debug builds only.
//!
//! With `KREPIS_TEST_PAUSE_AT=<point>` in its environment, a debug kernel
//! that reaches `<point>` prints `krepis-paused-at <point>` on stderr and
//! sleeps until it is killed: a test kills the process exactly there and
//! checks what the next `open` makes of the journal. Release builds compile
//! every point to nothing.

/// Pauses here forever if the environment names this point (debug builds).
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    if std::env::var("KREPIS_TEST_PAUSE_AT").as_deref() == Ok(name) {
        eprintln!("krepis-paused-at {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Pauses here forever if the environment names this point (debug builds).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
