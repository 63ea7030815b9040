//! A re-entrant reader/closer gate: any number of calls may be inside at once (nested too, from a
//! callback running inside a call), and `close_and_wait` shuts the door and waits until the last
//! one has left. Unlike `std::sync::RwLock`, a nested `enter` never deadlocks against a waiting
//! closer (std's lock makes new readers wait behind a waiting writer), which matters because plugin
//! callbacks arrive re-entrantly inside `send`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct Gate {
    active: AtomicUsize,
    closing: AtomicBool,
}

/// Inside the gate until dropped.
#[derive(Debug)]
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
    }
}

impl Gate {
    /// Enters, unless the gate is closing or closed. SeqCst on both sides (increment, then read
    /// `closing`; store `closing`, then read the count) so that either the caller sees `closing`
    /// or the closer sees the caller.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        self.active.fetch_add(1, SeqCst);
        if self.closing.load(SeqCst) {
            self.active.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Pass(self))
    }

    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// Closes the gate and waits (blocking) until no call is inside, at most `timeout` if given.
    /// Returns whether it drained. Call it from a thread that is not inside the gate.
    pub(crate) fn close_and_wait(&self, timeout: Option<Duration>) -> bool {
        self.closing.store(true, SeqCst);
        let start = Instant::now();
        let mut spins = 0u32;
        while self.active.load(SeqCst) != 0 {
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return false;
            }
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn nested_enter_and_close() {
        let gate = Gate::default();
        {
            let _a = gate.enter().expect("open");
            let _b = gate.enter().expect("nested");
            assert!(!gate.close_and_wait(Some(Duration::from_millis(5))));
            assert!(gate.enter().is_none());
        }
        assert!(gate.close_and_wait(None));
        assert!(gate.is_closing());
    }

    #[test]
    fn close_waits_for_callers() {
        let gate = Arc::new(Gate::default());
        let inside = Arc::new(AtomicBool::new(false));
        let (g, i) = (gate.clone(), inside.clone());
        let t = std::thread::spawn(move || {
            let _p = g.enter().expect("open");
            i.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            i.store(false, SeqCst);
        });
        while !inside.load(SeqCst) {
            std::thread::yield_now();
        }
        assert!(gate.close_and_wait(None));
        assert!(!inside.load(SeqCst));
        t.join().expect("thread");
    }
}
