//! Reading spilled chunks back ahead of the evaluation, as far as the memory budget allows: the
//! reader thread may hold [`AHEAD_BYTES`] more than the evaluation has given back, and every
//! chunk the evaluation is done with (from memory or from the file) returns its bytes. So while
//! the chunks kept in memory are evaluated, the file's first chunks take their place, and the
//! client's garbled material in memory stays within the budget plus `AHEAD_BYTES` and one chunk.

use std::io::Read;
use std::sync::{mpsc, Arc, Condvar, Mutex};

use crate::bank::StoredChunk;
use crate::GcError;

/// Bytes read ahead beyond what the evaluation has given back.
pub(super) const AHEAD_BYTES: u64 = 64 << 20;

/// What the reader may still read: bytes of credit, and whether the evaluation has gone.
pub(super) struct Credit {
    state: Mutex<(i64, bool)>,
    cv: Condvar,
}

impl Credit {
    pub(super) fn new() -> Arc<Credit> {
        Arc::new(Credit {
            state: Mutex::new((AHEAD_BYTES as i64, false)),
            cv: Condvar::new(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut (i64, bool)) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut s);
        self.cv.notify_all();
        out
    }

    /// The evaluation is done with `bytes` of chunks.
    pub(super) fn give(&self, bytes: u64) {
        self.with(|s| s.0 = s.0.saturating_add(bytes.min(i64::MAX as u64) as i64));
    }

    /// The evaluation has gone: the reader stops.
    pub(super) fn close(&self) {
        self.with(|s| s.1 = true);
    }

    fn spend(&self, bytes: u64) {
        self.with(|s| s.0 = s.0.saturating_sub(bytes.min(i64::MAX as u64) as i64));
    }

    /// Waits for credit; false once the evaluation has gone.
    fn wait(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 <= 0 && !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        !s.1
    }
}

/// Reads and verifies records on a background thread while `credit` allows.
pub(super) fn read_ahead(
    mut r: Box<dyn Read + Send>,
    credit: Arc<Credit>,
) -> mpsc::Receiver<Result<Option<StoredChunk>, GcError>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while credit.wait() {
            let item = StoredChunk::read_from(&mut r);
            if let Ok(Some(c)) = &item {
                credit.spend(c.stored_len());
            }
            let last = !matches!(item, Ok(Some(_)));
            if tx.send(item).is_err() || last {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The reader waits while its credit is spent, goes on once bytes are given back, and stops
    /// when the evaluation has gone.
    #[test]
    fn the_reader_waits_for_credit_and_stops_when_closed() {
        let credit = Credit::new();
        assert!(credit.wait());
        credit.spend(AHEAD_BYTES);
        let (tx, rx) = mpsc::channel();
        let c = credit.clone();
        let t = std::thread::spawn(move || {
            let first = c.wait();
            tx.send(first).unwrap();
            c.spend(1);
            c.wait()
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "waited"
        );
        credit.give(1);
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        credit.close();
        assert!(!t.join().unwrap());
    }
}
