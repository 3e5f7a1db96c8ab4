//! Crash injection for tests. In test builds a named failpoint can be armed per thread; when hit,
//! the operation stops right there with [`Error::Failpoint`], as if the process had died (no
//! cleanup runs after it). In other builds `hit` is a no-op the optimizer removes.

use crate::error::Result;

#[cfg(test)]
thread_local! {
    static ARMED: std::cell::RefCell<Option<&'static str>> = const { std::cell::RefCell::new(None) };
}

/// Arms `name` for the current thread (tests only).
#[cfg(test)]
pub(crate) fn arm(name: &'static str) {
    ARMED.with(|a| *a.borrow_mut() = Some(name));
}

/// Disarms (tests only).
#[cfg(test)]
pub(crate) fn disarm() {
    ARMED.with(|a| *a.borrow_mut() = None);
}

/// Returns `Err(Failpoint)` if `name` is armed on this thread.
#[inline]
pub(crate) fn hit(name: &'static str) -> Result<()> {
    #[cfg(test)]
    {
        let armed = ARMED.with(|a| *a.borrow() == Some(name));
        if armed {
            return Err(crate::error::Error::Failpoint(name));
        }
    }
    let _ = name;
    Ok(())
}
