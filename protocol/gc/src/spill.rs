//! Keeping a one-shot session's garbled chunks within a memory budget: chunks are held in memory
//! until they reach [`SpillPolicy::memory_bytes`], the rest go to an unnamed temporary file
//! (created without a name on Linux, `O_TMPFILE`, owner-only elsewhere, and gone when closed) and
//! come back online through a reader thread a few chunks ahead of the evaluation. The client's
//! memory then stays bounded whatever the circuit count (DenseNet-161 at 64×64: 11.6 GB of tables
//! and labels, `pi-opt count`).
//!
//! The file holds what a banked set holds (tables and the client's active input labels, each
//! record with its XXH3 checksum, [`StoredChunk::write_to`]), on the client's own disk, for the
//! length of one session.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::mpsc;

use crate::bank::{ChunkSink, ChunkSource, StoredChunk};
use crate::GcError;

/// Chunks read ahead of the evaluation.
const READ_AHEAD: usize = 4;

/// How much of the garbled material stays in memory, and where the rest goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpillPolicy {
    /// Bytes of stored chunks (tables and labels) kept in memory.
    pub memory_bytes: u64,
    /// Directory of the temporary file (default: the system's temporary directory).
    pub dir: Option<PathBuf>,
}

impl SpillPolicy {
    /// Everything in memory.
    pub fn memory_only() -> Self {
        SpillPolicy {
            memory_bytes: u64::MAX,
            dir: None,
        }
    }
}

/// A [`ChunkSink`] that keeps chunks in memory up to the policy's budget and writes the rest to a
/// temporary file; [`SpillChunks::into_source`] gives them back in order.
pub struct SpillChunks {
    policy: SpillPolicy,
    memory: VecDeque<StoredChunk>,
    held: u64,
    file: Option<BufWriter<File>>,
    spilled: u64,
}

impl SpillChunks {
    /// An empty sink under `policy`.
    pub fn new(policy: SpillPolicy) -> Self {
        SpillChunks {
            policy,
            memory: VecDeque::new(),
            held: 0,
            file: None,
            spilled: 0,
        }
    }

    /// Bytes of chunks held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.held
    }

    /// Bytes written to the temporary file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled
    }

    /// The chunks in the order they were put: the ones in memory, then the file's.
    pub fn into_source(self) -> Result<Box<dyn ChunkSource>, GcError> {
        let file = match self.file {
            None => None,
            Some(w) => {
                let mut f = w
                    .into_inner()
                    .map_err(|e| storage(&self.policy, e.into_error()))?;
                f.seek(SeekFrom::Start(0))
                    .map_err(|e| storage(&self.policy, e))?;
                Some(read_ahead(f))
            }
        };
        Ok(Box::new(SpillSource {
            memory: self.memory,
            file,
        }))
    }

    fn open(&mut self) -> Result<&mut BufWriter<File>, GcError> {
        if self.file.is_none() {
            let dir = self.policy.dir.clone().unwrap_or_else(std::env::temp_dir);
            let f = tempfile::tempfile_in(&dir).map_err(|e| {
                GcError::Storage(format!(
                    "cannot create a temporary file in {} for the garbled circuits beyond the \
                     memory budget ({e}); choose another directory or raise the budget",
                    dir.display()
                ))
            })?;
            self.file = Some(BufWriter::with_capacity(1 << 20, f));
        }
        self.file
            .as_mut()
            .ok_or_else(|| GcError::Storage("spill file".into()))
    }
}

fn storage(policy: &SpillPolicy, e: std::io::Error) -> GcError {
    let dir = policy.dir.clone().unwrap_or_else(std::env::temp_dir);
    GcError::Storage(format!(
        "writing garbled circuits to a temporary file in {}: {e} (is the disk full? choose \
         another directory or raise the memory budget)",
        dir.display()
    ))
}

impl ChunkSink for SpillChunks {
    fn put(&mut self, chunk: StoredChunk) -> Result<(), GcError> {
        let len = chunk.stored_len();
        if self.file.is_none() && self.held.saturating_add(len) <= self.policy.memory_bytes {
            self.held += len;
            self.memory.push_back(chunk);
            return Ok(());
        }
        let w = self.open()?;
        let r = chunk.write_to(w);
        r.map_err(|e| storage(&self.policy, e))?;
        self.spilled += len;
        Ok(())
    }
}

/// Reads and verifies records on a background thread, `READ_AHEAD` chunks ahead.
fn read_ahead(f: File) -> mpsc::Receiver<Result<Option<StoredChunk>, GcError>> {
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 20, f);
        loop {
            let item = StoredChunk::read_from(&mut r);
            let last = !matches!(item, Ok(Some(_)));
            if tx.send(item).is_err() || last {
                return;
            }
        }
    });
    rx
}

struct SpillSource {
    memory: VecDeque<StoredChunk>,
    file: Option<mpsc::Receiver<Result<Option<StoredChunk>, GcError>>>,
}

impl ChunkSource for SpillSource {
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError> {
        if let Some(c) = self.memory.pop_front() {
            return Ok(Some(c));
        }
        match &self.file {
            None => Ok(None),
            Some(rx) => rx.recv().unwrap_or_else(|_| {
                Err(GcError::Storage(
                    "the reader of the spilled garbled circuits stopped".into(),
                ))
            }),
        }
    }
}
