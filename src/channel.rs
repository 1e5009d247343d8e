//! [`Sink`]: where a producer (the session, the capture worker, the dictation core) delivers its
//! events. A sink is a channel sender plus whatever the listener needs done on each event (a
//! window asks for a repaint), so events go straight from the thread that has them to the one
//! that shows them: no forwarding threads.

use std::sync::Arc;

use crossbeam_channel::Sender;

/// Delivers events of type `T`. Cheap to clone; every clone delivers to the same listener.
pub struct Sink<T> {
    deliver: Arc<dyn Fn(T) + Send + Sync>,
}

impl<T> Clone for Sink<T> {
    fn clone(&self) -> Self {
        Sink {
            deliver: Arc::clone(&self.deliver),
        }
    }
}

impl<T> std::fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl<T: Send + 'static> Sink<T> {
    /// Sends into `tx`, then calls `wake` (a window's repaint request). A listener that is gone
    /// is not an error: the producer carries on (a dictation outlives a closed window).
    pub fn waking(tx: Sender<T>, wake: impl Fn() + Send + Sync + 'static) -> Self {
        Sink {
            deliver: Arc::new(move |event| {
                if tx.send(event).is_ok() {
                    wake();
                }
            }),
        }
    }

    /// Calls `f` with every event.
    pub fn from_fn(f: impl Fn(T) + Send + Sync + 'static) -> Self {
        Sink {
            deliver: Arc::new(f),
        }
    }

    /// Delivers one event.
    pub fn send(&self, event: T) {
        (self.deliver)(event);
    }

    /// A sink for events of another type, wrapped into this one's by `wrap` (the dictation core
    /// hands `DictationEvent::Session` to the session this way).
    pub fn map<U: Send + 'static>(&self, wrap: impl Fn(U) -> T + Send + Sync + 'static) -> Sink<U> {
        let inner = self.clone();
        Sink {
            deliver: Arc::new(move |event| inner.send(wrap(event))),
        }
    }
}

impl<T: Send + 'static> From<Sender<T>> for Sink<T> {
    fn from(tx: Sender<T>) -> Self {
        Sink {
            deliver: Arc::new(move |event| {
                // A listener that stopped listening does not stop the producer.
                let _ = tx.send(event);
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_waking_sink_delivers_then_wakes_and_map_wraps() {
        let (tx, rx) = crossbeam_channel::unbounded::<String>();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&wakes);
        let sink = Sink::waking(tx, move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let numbers: Sink<u32> = sink.map(|n| format!("#{n}"));
        numbers.send(7);
        sink.send("plain".to_owned());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["#7", "plain"]);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
        drop(rx);
        // Nobody listens: no wake, no panic.
        numbers.send(8);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
