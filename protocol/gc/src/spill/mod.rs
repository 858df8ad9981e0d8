//! Keeping a one-shot session's garbled chunks within a memory budget: chunks are held in memory
//! until they reach [`SpillPolicy::memory_bytes`], the rest go to an unnamed temporary file
//! (created without a name on Linux, `O_TMPFILE`, owner-only elsewhere, and gone when closed) and
//! come back online through a reader thread that runs ahead of the evaluation as far as the
//! memory freed by evaluated chunks allows ([`ahead`]). The client's
//! memory then stays bounded whatever the circuit count (DenseNet-161 at 64×64: 11.6 GB of tables
//! and labels, `pi-opt count`).
//!
//! Spilled chunks are written by a background thread (the receive loop only hands them over) and
//! bypass the page cache where the filesystem allows it ([`direct`]): otherwise the spilled
//! bytes would take the memory the budget saves, as page cache.
//!
//! The file holds what a banked set holds (tables and the client's active input labels, each
//! record with its XXH3 checksum, [`StoredChunk::write_to`]), on the client's own disk, for the
//! length of one session.

mod ahead;
mod direct;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::bank::{ChunkSink, ChunkSource, StoredChunk};
use crate::GcError;

/// Chunks handed to the writer thread and not yet written.
const WRITE_BEHIND: usize = 2;

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
    writer: Option<Writer>,
    spilled: u64,
}

/// The spill file, written through the page cache or around it.
enum Target {
    Direct(direct::DirectWriter),
    Buffered(BufWriter<File>),
}

impl Target {
    /// A new unnamed temporary file in `dir`, direct where possible.
    fn create(dir: &Path) -> io::Result<Target> {
        if let Some(f) = direct::open(dir) {
            return Ok(Target::Direct(direct::DirectWriter::new(f)));
        }
        let f = tempfile::tempfile_in(dir)?;
        Ok(Target::Buffered(BufWriter::with_capacity(1 << 20, f)))
    }

    fn out(&mut self) -> &mut dyn Write {
        match self {
            Target::Direct(w) => w,
            Target::Buffered(w) => w,
        }
    }

    /// Everything written, rewound: a reader of the records.
    fn into_reader(self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Target::Direct(w) => Box::new(w.finish()?),
            Target::Buffered(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.seek(SeekFrom::Start(0))?;
                Box::new(BufReader::with_capacity(1 << 20, f))
            }
        })
    }
}

/// The background thread that writes spilled chunks in the order they come.
struct Writer {
    tx: mpsc::SyncSender<StoredChunk>,
    thread: JoinHandle<io::Result<Target>>,
}

impl Writer {
    fn start(mut target: Target) -> Writer {
        let (tx, rx) = mpsc::sync_channel::<StoredChunk>(WRITE_BEHIND);
        let thread = std::thread::spawn(move || -> io::Result<Target> {
            for chunk in rx {
                chunk.write_to(target.out())?;
            }
            Ok(target)
        });
        Writer { tx, thread }
    }

    /// Waits for every chunk handed over to be written.
    fn finish(self) -> io::Result<Target> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the spill writer panicked")))
    }
}

impl SpillChunks {
    /// An empty sink under `policy`.
    pub fn new(policy: SpillPolicy) -> Self {
        SpillChunks {
            policy,
            memory: VecDeque::new(),
            held: 0,
            writer: None,
            spilled: 0,
        }
    }

    /// Bytes of chunks held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.held
    }

    /// Bytes handed to the temporary file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled
    }

    /// The chunks in the order they were put: the ones in memory, then the file's.
    pub fn into_source(mut self) -> Result<Box<dyn ChunkSource>, GcError> {
        let credit = ahead::Credit::new();
        let file = match self.writer.take() {
            None => None,
            Some(w) => {
                let r = w.finish().and_then(Target::into_reader);
                let r = r.map_err(|e| storage(&self.policy, e))?;
                Some(ahead::read_ahead(r, credit.clone()))
            }
        };
        Ok(Box::new(SpillSource {
            memory: self.memory,
            file,
            credit,
            last: 0,
        }))
    }

    fn dir(&self) -> PathBuf {
        self.policy.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn writer(&mut self) -> Result<&mut Writer, GcError> {
        if self.writer.is_none() {
            let dir = self.dir();
            let target = Target::create(&dir).map_err(|e| {
                GcError::Storage(format!(
                    "cannot create a temporary file in {} for the garbled circuits beyond the \
                     memory budget ({e}); choose another directory or raise the budget",
                    dir.display()
                ))
            })?;
            self.writer = Some(Writer::start(target));
        }
        self.writer
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
        if self.writer.is_none() && self.held.saturating_add(len) <= self.policy.memory_bytes {
            self.held += len;
            self.memory.push_back(chunk);
            return Ok(());
        }
        if self.writer()?.tx.send(chunk).is_err() {
            // The writer stopped on an error: report it.
            let e = match self.writer.take().map(Writer::finish) {
                Some(Err(e)) => e,
                _ => io::Error::other("the spill writer stopped"),
            };
            return Err(storage(&self.policy, e));
        }
        self.spilled += len;
        Ok(())
    }
}

/// Nanoseconds per byte of writing garbled material to a spill file and of reading it back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpillRates {
    pub write_ns_per_byte: f64,
    pub read_ns_per_byte: f64,
}

/// Writes `bytes` through a spill file in `dir` (the system's temporary directory by default) and
/// reads them back, the way a session spills (direct where possible): the host cost model's
/// figures.
pub fn spill_rates(dir: Option<&Path>, bytes: usize) -> Result<SpillRates, GcError> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let io = |e: io::Error| GcError::Storage(format!("spill file in {}: {e}", dir.display()));
    let piece = vec![0xa5u8; 1 << 20];
    let pieces = bytes.div_ceil(piece.len()).max(1);
    let total = (pieces * piece.len()) as f64;
    let t = Instant::now();
    let mut target = Target::create(&dir).map_err(io)?;
    for _ in 0..pieces {
        target.out().write_all(&piece).map_err(io)?;
    }
    let mut r = target.into_reader().map_err(io)?;
    let write = t.elapsed().as_nanos() as f64 / total;
    let t = Instant::now();
    let mut back = vec![0u8; piece.len()];
    while r.read(&mut back).map_err(io)? > 0 {}
    Ok(SpillRates {
        write_ns_per_byte: write,
        read_ns_per_byte: t.elapsed().as_nanos() as f64 / total,
    })
}

struct SpillSource {
    memory: VecDeque<StoredChunk>,
    file: Option<mpsc::Receiver<Result<Option<StoredChunk>, GcError>>>,
    /// The file reader's allowance: the bytes of every chunk the evaluation is done with.
    credit: std::sync::Arc<ahead::Credit>,
    /// Bytes of the chunk given out last (evaluated once the next one is asked for).
    last: u64,
}

impl ChunkSource for SpillSource {
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError> {
        self.credit.give(std::mem::take(&mut self.last));
        let next = match self.memory.pop_front() {
            Some(c) => Ok(Some(c)),
            None => match &self.file {
                None => Ok(None),
                Some(rx) => rx.recv().unwrap_or_else(|_| {
                    Err(GcError::Storage(
                        "the reader of the spilled garbled circuits stopped".into(),
                    ))
                }),
            },
        };
        if let Ok(Some(c)) = &next {
            self.last = c.stored_len();
        }
        next
    }
}

impl Drop for SpillSource {
    fn drop(&mut self) {
        self.credit.close();
    }
}
