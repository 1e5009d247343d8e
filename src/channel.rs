//! [`Sink`]: where a producer (the session, the capture worker, the dictation core) delivers its
//! events. A sink is a channel sender plus whatever the listener needs done on each event (a
//! window asks for a repaint), so events go straight from the thread that has them to the one
//! that shows them: no forwarding threads.
//!
//! [`woken`]: the audio chunks' channel, a bounded crossbeam channel whose receiver an async task
//! can await: every send rings a `tokio::sync::Notify`, so chunks go from the capture (or file)
//! thread to the session's task with no thread in between.

use std::sync::Arc;

use crossbeam_channel::{Receiver, SendError, Sender, TryRecvError, TrySendError};
use tokio::sync::Notify;

/// A bounded channel for `capacity` values whose receiver can be awaited (see the module docs).
pub fn woken<T>(capacity: usize) -> (WokenSender<T>, WokenReceiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let wake = Arc::new(Notify::new());
    (
        WokenSender {
            tx: Some(tx),
            wake: Arc::clone(&wake),
        },
        WokenReceiver { rx, wake },
    )
}

/// The sending side of [`woken`]. Sends wake the receiver; so does dropping the last sender
/// (the receiver then sees the channel closed).
pub struct WokenSender<T> {
    /// `None` only while dropping: the sender must be gone before the receiver is woken.
    tx: Option<Sender<T>>,
    wake: Arc<Notify>,
}

impl<T> Clone for WokenSender<T> {
    fn clone(&self) -> Self {
        WokenSender {
            tx: self.tx.clone(),
            wake: Arc::clone(&self.wake),
        }
    }
}

impl<T> WokenSender<T> {
    /// Sends without blocking; a full channel gives the value back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let Some(tx) = &self.tx else {
            return Err(TrySendError::Disconnected(value));
        };
        tx.try_send(value)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Sends, waiting while the channel is full (a file reader held back by the session).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let Some(tx) = &self.tx else {
            return Err(SendError(value));
        };
        tx.send(value)?;
        self.wake.notify_one();
        Ok(())
    }
}

impl<T> Drop for WokenSender<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        self.wake.notify_one();
    }
}

/// The receiving side of [`woken`].
pub struct WokenReceiver<T> {
    rx: Receiver<T>,
    wake: Arc<Notify>,
}

impl<T: Send + 'static> WokenReceiver<T> {
    /// The next value, or `None` once every sender is gone and the channel is empty. Cancel-safe:
    /// a value is only taken in the poll that returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(value) => return Some(value),
                Err(TryRecvError::Disconnected) => return None,
                // A send between the try and the wait leaves a permit: the wait ends at once.
                Err(TryRecvError::Empty) => self.wake.notified().await,
            }
        }
    }

    /// For a caller that made a plain crossbeam channel: a thread moves its values into a woken
    /// one of `capacity` (keeping the backpressure), ending when `rx` closes or this receiver is
    /// dropped.
    pub fn forwarded(rx: Receiver<T>, capacity: usize) -> std::io::Result<Self> {
        let (tx, woken_rx) = woken(capacity);
        std::thread::Builder::new()
            .name("audio-forward".to_owned())
            .spawn(move || {
                for value in &rx {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            })?;
        Ok(woken_rx)
    }
}

/// A sender that may wait while its channel is full: a crossbeam sender or a [`WokenSender`].
/// Returns false when the receiver is gone.
pub trait BlockingSend<T> {
    fn send_blocking(&self, value: T) -> bool;
}

impl<T> BlockingSend<T> for Sender<T> {
    fn send_blocking(&self, value: T) -> bool {
        self.send(value).is_ok()
    }
}

impl<T> BlockingSend<T> for WokenSender<T> {
    fn send_blocking(&self, value: T) -> bool {
        self.send(value).is_ok()
    }
}

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

    #[test]
    fn a_woken_receiver_gets_every_value_in_order_then_none_when_the_senders_are_gone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = woken::<u32>(4);
        let producer = std::thread::spawn(move || {
            for n in 0..1000 {
                // Bounded: the producer waits for the task, as a file reader does.
                assert!(tx.send_blocking(n));
                if n % 97 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        let got = runtime.block_on(async {
            let mut got = Vec::new();
            while let Some(n) = rx.recv().await {
                got.push(n);
            }
            got
        });
        producer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_woken_channel_refuses_without_blocking_and_a_dropped_receiver_disconnects() {
        let (tx, rx) = woken::<u8>(1);
        assert!(tx.try_send(1).is_ok());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        drop(rx);
        assert!(!tx.send_blocking(3));
    }
}
