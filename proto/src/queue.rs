//! A FIFO that keeps its first element inline.

use std::collections::VecDeque;

/// A FIFO queue whose first element lives inline: most channels carry one message each way
/// (an RPC call, a request and its answer), and a `VecDeque` would allocate for it. A second
/// element moves the queue to a `VecDeque`, which it keeps (with its capacity) from then on.
#[derive(Debug, Default)]
pub(crate) enum Queue<T> {
    #[default]
    Empty,
    One(T),
    Many(VecDeque<T>),
}

impl<T> Queue<T> {
    pub(crate) fn push_back(&mut self, value: T) {
        match std::mem::take(self) {
            Queue::Empty => *self = Queue::One(value),
            Queue::One(first) => *self = Queue::Many(VecDeque::from([first, value])),
            Queue::Many(mut many) => {
                many.push_back(value);
                *self = Queue::Many(many);
            }
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        match self {
            Queue::Empty => None,
            Queue::One(_) => match std::mem::take(self) {
                Queue::One(value) => Some(value),
                _ => None,
            },
            Queue::Many(many) => many.pop_front(),
        }
    }

    pub(crate) fn front(&self) -> Option<&T> {
        match self {
            Queue::Empty => None,
            Queue::One(value) => Some(value),
            Queue::Many(many) => many.front(),
        }
    }

    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        match self {
            Queue::Empty => None,
            Queue::One(value) => Some(value),
            Queue::Many(many) => many.front_mut(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.front().is_none()
    }

    /// Drops every element (a `VecDeque` keeps its capacity).
    pub(crate) fn clear(&mut self) {
        match self {
            Queue::Many(many) => many.clear(),
            _ => *self = Queue::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fifo_order_across_the_inline_slot_and_the_deque() {
        let mut q = Queue::default();
        assert!(q.is_empty() && q.pop_front().is_none());
        q.push_back(1);
        assert!(matches!(q, Queue::One(1)));
        q.push_back(2);
        q.push_back(3);
        assert_eq!(q.front(), Some(&1));
        *q.front_mut().unwrap() = 10;
        assert_eq!((q.pop_front(), q.pop_front()), (Some(10), Some(2)));
        q.push_back(4);
        assert_eq!((q.pop_front(), q.pop_front(), q.pop_front()), (Some(3), Some(4), None));
        q.push_back(5);
        q.clear();
        assert!(q.is_empty());
        let mut one = Queue::default();
        one.push_back(7);
        assert_eq!((one.pop_front(), one.is_empty()), (Some(7), true));
    }
}
