//! A counting semaphore for the ANN engine's per-thread search contexts.
//!
//! Owns: the number of graph operations allowed at once. usearch keeps a fixed
//! pool of thread contexts (sized at `reserve`) and fails a search outright
//! when the pool is empty, so every graph search or insert first takes a
//! permit here and waits instead of failing.
//! Must never: be held across anything that waits for another permit (one
//! permit per thread at a time, so it cannot deadlock).

use std::sync::{Condvar, Mutex, PoisonError};

pub(crate) struct Slots {
    free: Mutex<usize>,
    returned: Condvar,
}

pub(crate) struct Permit<'a> {
    slots: &'a Slots,
}

impl Slots {
    pub(crate) fn new(count: usize) -> Self {
        Slots {
            free: Mutex::new(count.max(1)),
            returned: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit { slots: self }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut free = self
            .slots
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.slots.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_returned() {
        let slots = Slots::new(1);
        {
            let _a = slots.acquire();
        }
        let _b = slots.acquire();
    }
}
