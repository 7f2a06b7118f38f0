//! The run queues: a global injector and per-worker deques with stealers.
//!
//! Normally these are `crossbeam-deque`'s lock-free queues. Under loom they
//! are small mutex-protected `VecDeque`s with the same interface: crossbeam
//! spins with `std` primitives that loom cannot see (a model would hang), and
//! the queues are not what the models check; the barrier and parking
//! protocol around them are.

#[cfg(not(loom))]
mod imp {
    use crossbeam_deque::Steal;

    /// The global FIFO queue for work that arrives from outside the workers.
    pub(crate) struct Injector<T>(crossbeam_deque::Injector<T>);

    /// A worker's own queue (FIFO: tasks run in the order they were woken).
    pub(crate) struct Local<T>(crossbeam_deque::Worker<T>);

    /// The handle other workers use to steal from a `Local`.
    pub(crate) struct Stealer<T>(crossbeam_deque::Stealer<T>);

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector(crossbeam_deque::Injector::new())
        }
        pub(crate) fn push(&self, value: T) {
            self.0.push(value)
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        /// Pops one item, retrying while a concurrent operation is in flight.
        pub(crate) fn pop(&self) -> Option<T> {
            loop {
                match self.0.steal() {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => {}
                }
            }
        }
        /// Moves a batch into `dest` and returns one item to run now.
        pub(crate) fn pop_batch_into(&self, dest: &Local<T>) -> Option<T> {
            loop {
                match self.0.steal_batch_and_pop(&dest.0) {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => {}
                }
            }
        }
    }

    impl<T> Local<T> {
        pub(crate) fn new() -> Self {
            Local(crossbeam_deque::Worker::new_fifo())
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.stealer())
        }
        pub(crate) fn push(&self, value: T) {
            self.0.push(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        /// Steals about half of the victim's queue into `dest` and returns
        /// one item to run now. `None` when the victim is empty.
        pub(crate) fn steal_batch_into(&self, dest: &Local<T>) -> Option<T> {
            loop {
                match self.0.steal_batch_and_pop(&dest.0) {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => {}
                }
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::super::{Arc, Mutex};
    use std::collections::VecDeque;

    pub(crate) struct Injector<T>(Mutex<VecDeque<T>>);
    pub(crate) struct Local<T>(Arc<Mutex<VecDeque<T>>>);
    pub(crate) struct Stealer<T>(Arc<Mutex<VecDeque<T>>>);

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector(Mutex::new(VecDeque::new()))
        }
        pub(crate) fn push(&self, value: T) {
            self.0.lock().push_back(value)
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().pop_front()
        }
        pub(crate) fn pop_batch_into(&self, _dest: &Local<T>) -> Option<T> {
            self.pop()
        }
    }

    impl<T> Local<T> {
        pub(crate) fn new() -> Self {
            Local(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
        pub(crate) fn push(&self, value: T) {
            self.0.lock().push_back(value)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
        pub(crate) fn steal_batch_into(&self, _dest: &Local<T>) -> Option<T> {
            self.0.lock().pop_front()
        }
    }
}

pub(crate) use imp::*;
