//! The client's bank: one file per banked set in a directory.
//!
//! File layout: a 512-byte header (`"PIBANK02"`, the length of the [`SetInfo`] that follows, the
//! info in bincode, zero padding; written as zeros first and filled in when the set completes),
//! the garbled chunks as [`pi_gc::StoredChunk`] records, then the [`SetTail`] (bincode).
//! `SetInfo` locates the tail and carries its BLAKE3 digest, so a truncated or damaged file is
//! refused before anything of it is used.
//!
//! Life of a set, by file name (`set-<nanoseconds>-<random>`):
//! * `.partial` while preprocessing writes it, locked (flock) by the writing process; renamed to
//!   `.pibank` after the tail is written and synced. A `.partial` whose lock is free belonged to a
//!   process that died: it is deleted (nothing of it was ever usable).
//! * `.pibank`: complete and unused.
//! * `.claimed`: taken by an `infer` run (locked) while the server decides on its ticket; renamed
//!   back if the server did not use it, deleted as soon as the server accepts it (the open file
//!   is then read during the online phase) or refuses it for good. A `.claimed` whose lock is free
//!   belonged to a run that died mid-way: the server may have used its ticket, so it is deleted,
//!   never reused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use pi_gc::{ChunkSink, ChunkSource, GcError, StoredChunk};
use protocol::bank::store::{BankReader, BankWriter, ClaimedSet, SetTail, SetWriter};
use protocol::bank::ticket::{hex, TicketHeader};
use protocol::ProtocolError;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::BankError;

const MAGIC: &[u8; 8] = b"PIBANK02";
const HEADER: u64 = 512;
/// Largest tail accepted (input mask, output share, offsets, public model, ticket): 1 GiB.
const MAX_TAIL: u64 = 1 << 30;
/// Chunks read ahead of the online phase by the prefetching thread.
const PREFETCH: usize = 4;
const INFO_CONTEXT: &str = "pi-bank 2025 set info v1";
const TAIL_CONTEXT: &str = "pi-bank 2025 set tail v1";

const PARTIAL: &str = "partial";
const READY: &str = "pibank";
const CLAIMED: &str = "claimed";

/// What the header of a complete set says.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SetInfo {
    model: [u8; 32],
    model_name: String,
    server: String,
    relus: u64,
    created: u64,
    expires: u64,
    ticket_id: [u8; 16],
    ticket_bytes: u64,
    tail_offset: u64,
    tail_len: u64,
    tail_digest: [u8; 32],
}

/// One set as `status` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SetStatus {
    pub name: String,
    /// Hex of the public-model fingerprint (first 8 bytes).
    pub model: String,
    pub model_name: String,
    pub server: String,
    pub relus: u64,
    pub bytes: u64,
    pub ticket_bytes: u64,
    pub created: u64,
    pub expires: u64,
    pub expired: bool,
}

/// What the bank holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreStatus {
    pub directory: String,
    /// Complete, unused sets, oldest first.
    pub sets: Vec<SetStatus>,
    /// Set files that cannot be used (damaged, truncated, unknown format): name and reason.
    pub damaged: Vec<(String, String)>,
    /// Sets being written by a running `preprocess`.
    pub in_progress: usize,
    /// Sets claimed by a running `infer`.
    pub in_use: usize,
    /// Leftovers of runs that died, removed by this call: unfinished sets and claimed sets.
    pub cleaned: usize,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BankError {
    let path = path.display().to_string();
    move |source| BankError::Io { what, path, source }
}

/// Says "disk full" plainly when that is what an error is.
fn storage_error(path: &Path, e: io::Error) -> GcError {
    if e.raw_os_error() == Some(28) || e.kind() == io::ErrorKind::StorageFull {
        GcError::Storage(format!(
            "disk full while writing {}; the unfinished set is removed, finished sets are kept",
            path.display()
        ))
    } else {
        GcError::Storage(format!("writing {}: {e}", path.display()))
    }
}

/// A directory of banked sets.
pub struct DirBank {
    dir: PathBuf,
}

impl DirBank {
    /// Opens (creating it if needed) the bank at `dir`, and removes leftovers of runs that died.
    pub fn open(dir: &Path) -> Result<Self, BankError> {
        fs::create_dir_all(dir).map_err(io_err("creating bank directory", dir))?;
        let bank = DirBank {
            dir: dir.to_path_buf(),
        };
        bank.clean()?;
        Ok(bank)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self, ext: &str) -> Result<Vec<PathBuf>, BankError> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map_err(io_err("listing", &self.dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Removes `.partial` and `.claimed` files no live process holds; returns how many.
    fn clean(&self) -> Result<usize, BankError> {
        let mut n = 0;
        for p in self.files(PARTIAL)?.into_iter().chain(self.files(CLAIMED)?) {
            if let Ok(f) = File::open(&p) {
                if f.try_lock().is_ok() {
                    fs::remove_file(&p).map_err(io_err("removing leftover", &p))?;
                    n += 1;
                }
            }
        }
        if n > 0 {
            sync_dir(&self.dir);
        }
        Ok(n)
    }

    /// Lists the bank (and removes leftovers of runs that died).
    pub fn status(&self) -> Result<StoreStatus, BankError> {
        let cleaned = self.clean()?;
        let mut st = StoreStatus {
            directory: self.dir.display().to_string(),
            cleaned,
            in_progress: self.files(PARTIAL)?.len(),
            in_use: self.files(CLAIMED)?.len(),
            ..Default::default()
        };
        let t = now();
        for p in self.files(READY)? {
            let name = set_name(&p);
            match File::open(&p).map_err(|e| e.to_string()).and_then(|mut f| {
                let len = f.metadata().map_err(|e| e.to_string())?.len();
                read_info(&mut f, len).map(|i| (i, len))
            }) {
                Ok((info, bytes)) => st.sets.push(SetStatus {
                    name,
                    model: hex(&info.model[..8]),
                    model_name: info.model_name,
                    server: info.server,
                    relus: info.relus,
                    bytes,
                    ticket_bytes: info.ticket_bytes,
                    created: info.created,
                    expires: info.expires,
                    expired: t >= info.expires,
                }),
                Err(reason) => st.damaged.push((name, reason)),
            }
        }
        Ok(st)
    }

    /// Claims set file `p` for this process: locked, renamed to `.claimed`, header checked.
    fn try_claim(&self, p: &Path) -> Result<Option<Claimed>, BankError> {
        let Ok(mut file) = File::open(p) else {
            return Ok(None); // taken by another run meanwhile
        };
        if file.try_lock().is_err() {
            return Ok(None);
        }
        let claimed = p.with_extension(CLAIMED);
        if fs::rename(p, &claimed).is_err() {
            return Ok(None);
        }
        sync_dir(&self.dir);
        let name = set_name(p);
        let len = file.metadata().map_err(io_err("reading", &claimed))?.len();
        let loaded = read_info(&mut file, len)
            .and_then(|info| read_tail(&mut file, &info).map(|tail| (info, tail)));
        let started = loaded.and_then(|(info, tail)| {
            // Reading starts now, while the ticket is on its way: the first chunks are ready
            // when the online phase begins (a refusal just stops the reader).
            let mut reader = file.try_clone().map_err(|e| e.to_string())?;
            reader
                .seek(SeekFrom::Start(HEADER))
                .map_err(|e| e.to_string())?;
            let chunks = BufReader::with_capacity(1 << 20, reader).take(info.tail_offset - HEADER);
            Ok((tail, Prefetch::start(chunks, name.clone())))
        });
        match started {
            Ok((tail, chunks)) => Ok(Some(Claimed {
                dir: self.dir.clone(),
                path: claimed,
                name,
                lock: file,
                tail,
                chunks,
            })),
            Err(reason) => {
                // A damaged set can never be used: remove it and say so.
                let _ = fs::remove_file(&claimed);
                sync_dir(&self.dir);
                Err(BankError::Invalid {
                    path: p.display().to_string(),
                    reason: format!("{reason}; the set was removed"),
                })
            }
        }
    }
}

fn set_name(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes renames and removals in `dir` durable (best effort: not every file system supports it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_info(f: &mut File, file_len: u64) -> Result<SetInfo, String> {
    let mut h = [0u8; HEADER as usize];
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    f.read_exact(&mut h)
        .map_err(|_| "truncated: shorter than its header".to_string())?;
    if &h[..7] == b"PIBANK0" && h[..8] != MAGIC[..] {
        return Err(format!(
            "a set of another format ({}) than this pi-client's ({}): run `pi-client preprocess` again",
            String::from_utf8_lossy(&h[..8]),
            String::from_utf8_lossy(MAGIC)
        ));
    }
    if &h[..8] != MAGIC {
        return Err("not a banked set (bad magic)".into());
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&h[8..12]);
    let len = u32::from_le_bytes(l) as usize;
    if len == 0 {
        return Err("unfinished: its header was never completed".into());
    }
    if 12 + len + 32 > HEADER as usize {
        return Err("damaged header".into());
    }
    let body = &h[12..12 + len];
    let digest = blake3::derive_key(INFO_CONTEXT, body);
    if digest[..] != h[12 + len..12 + len + 32] {
        return Err("damaged header (checksum)".into());
    }
    let info: SetInfo = bincode::deserialize(body).map_err(|e| format!("damaged header: {e}"))?;
    if info.tail_offset < HEADER
        || info.tail_len > MAX_TAIL
        || info.tail_offset.checked_add(info.tail_len) != Some(file_len)
    {
        return Err(format!(
            "truncated or extended: {file_len} bytes on disk, {} expected",
            info.tail_offset.saturating_add(info.tail_len)
        ));
    }
    Ok(info)
}

fn read_tail(f: &mut File, info: &SetInfo) -> Result<SetTail, String> {
    f.seek(SeekFrom::Start(info.tail_offset))
        .map_err(|e| e.to_string())?;
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; info.tail_len as usize]);
    f.read_exact(&mut bytes)
        .map_err(|_| "truncated tail".to_string())?;
    if blake3::derive_key(TAIL_CONTEXT, &bytes) != info.tail_digest {
        return Err("damaged: its masks and ticket fail their checksum".into());
    }
    let tail = SetTail::from_bytes(&bytes, MAX_TAIL).map_err(|e| e.to_string())?;
    if tail.model != info.model {
        return Err("damaged: header and tail disagree on the model".into());
    }
    Ok(tail)
}

impl BankWriter for DirBank {
    fn begin(&mut self) -> Result<Box<dyn SetWriter>, ProtocolError> {
        let mut r = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut r);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let stem = format!("set-{nanos:020}-{}", hex(&r));
        let path = self.dir.join(format!("{stem}.{PARTIAL}"));
        // Owner-only: the set holds the client's input mask, which unmasks its input.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("creating", &path))?;
        file.try_lock()
            .map_err(|e| ProtocolError::Bank(format!("locking {}: {e}", path.display())))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&[0u8; HEADER as usize])
            .map_err(|e| ProtocolError::from(storage_error(&path, e)))?;
        Ok(Box::new(DirSetWriter {
            dir: self.dir.clone(),
            path,
            stem,
            w: Some(w),
            written: HEADER,
        }))
    }
}

/// A set being written; removed unless finished.
struct DirSetWriter {
    dir: PathBuf,
    path: PathBuf,
    stem: String,
    w: Option<BufWriter<File>>,
    written: u64,
}

impl ChunkSink for DirSetWriter {
    fn put(&mut self, chunk: StoredChunk) -> Result<(), GcError> {
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| GcError::Storage("set already finished".into()))?;
        chunk
            .write_to(w)
            .map_err(|e| storage_error(&self.path, e))?;
        self.written += chunk.stored_len();
        Ok(())
    }
}

impl SetWriter for DirSetWriter {
    fn finish(mut self: Box<Self>, tail: &SetTail) -> Result<String, ProtocolError> {
        let mut w = self
            .w
            .take()
            .ok_or_else(|| ProtocolError::Bank("set already finished".into()))?;
        let bytes = zeroize::Zeroizing::new(tail.to_bytes()?);
        let header = TicketHeader::parse(&tail.ticket)
            .map_err(|e| ProtocolError::Bank(format!("ticket: {e}")))?;
        let info = SetInfo {
            model: tail.model,
            model_name: tail.public.name().chars().take(64).collect(),
            server: tail.server.chars().take(128).collect(),
            relus: tail.relus,
            created: now(),
            expires: header.expires,
            ticket_id: header.id,
            ticket_bytes: tail.ticket.len() as u64,
            tail_offset: self.written,
            tail_len: bytes.len() as u64,
            tail_digest: blake3::derive_key(TAIL_CONTEXT, &bytes),
        };
        let body = bincode::serialize(&info)
            .map_err(|e| ProtocolError::Bank(format!("encoding set header: {e}")))?;
        if 12 + body.len() + 32 > HEADER as usize {
            return Err(ProtocolError::Bank("set header too long".into()));
        }
        let path = self.path.clone();
        let fail = |e: io::Error| ProtocolError::from(storage_error(&path, e));
        w.write_all(&bytes).map_err(fail)?;
        let mut file = w.into_inner().map_err(|e| fail(e.into_error()))?;
        let mut h = vec![0u8; HEADER as usize];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        h[12..12 + body.len()].copy_from_slice(&body);
        h[12 + body.len()..12 + body.len() + 32]
            .copy_from_slice(&blake3::derive_key(INFO_CONTEXT, &body));
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        file.write_all(&h).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        let ready = self.dir.join(format!("{}.{READY}", self.stem));
        fs::rename(&self.path, &ready).map_err(fail)?;
        sync_dir(&self.dir);
        // Renamed: nothing left to remove on drop.
        self.path = PathBuf::new();
        Ok(self.stem.clone())
    }
}

impl Drop for DirSetWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            drop(self.w.take());
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl BankReader for DirBank {
    fn claim(
        &mut self,
        server: &str,
        model: Option<&[u8; 32]>,
    ) -> Result<Option<Box<dyn ClaimedSet>>, ProtocolError> {
        // Candidates from their headers, for `model` if given; this server's first. Expired sets
        // are offered too: the server's clock decides, and its refusal discards them.
        let mut candidates: Vec<(bool, PathBuf)> = Vec::new();
        for p in self.files(READY)? {
            let Ok(mut f) = File::open(&p) else { continue };
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                continue;
            };
            match read_info(&mut f, len) {
                Ok(info) => {
                    if model.is_some_and(|m| *m != info.model) {
                        continue;
                    }
                    candidates.push((info.server != server, p));
                }
                // Damaged sets are claimed too, so that they are reported and removed.
                Err(_) => candidates.push((true, p)),
            }
        }
        candidates.sort();
        for (_, p) in candidates {
            if let Some(c) = self.try_claim(&p)? {
                return Ok(Some(Box::new(c)));
            }
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        match self.status() {
            Ok(st) => {
                let expired = st.sets.iter().filter(|s| s.expired).count();
                format!(
                    "{} holds {} unused set(s), {expired} of them expired, {} damaged",
                    self.dir.display(),
                    st.sets.len(),
                    st.damaged.len()
                )
            }
            Err(e) => e.to_string(),
        }
    }
}

/// A set claimed by this process.
struct Claimed {
    dir: PathBuf,
    path: PathBuf,
    name: String,
    /// Holds the claim's lock until the set is consumed, restored or discarded. The prefetch
    /// thread reads through a duplicate of this descriptor, which shares the lock: a restored set
    /// unlocks explicitly, so the next claim never waits for that thread to notice and exit.
    lock: File,
    tail: SetTail,
    chunks: Prefetch,
}

impl ClaimedSet for Claimed {
    fn name(&self) -> &str {
        &self.name
    }

    fn tail(&self) -> &SetTail {
        &self.tail
    }

    fn consume(self: Box<Self>) -> Result<Box<dyn ChunkSource>, ProtocolError> {
        // Deleted before anything online is sent; the open file stays readable until closed.
        fs::remove_file(&self.path).map_err(io_err("removing used set", &self.path))?;
        sync_dir(&self.dir);
        Ok(Box::new(self.chunks))
    }

    fn restore(self: Box<Self>) -> Result<(), ProtocolError> {
        let ready = self.path.with_extension(READY);
        fs::rename(&self.path, &ready).map_err(io_err("restoring set", &self.path))?;
        sync_dir(&self.dir);
        self.lock
            .unlock()
            .map_err(io_err("unlocking restored set", &ready))?;
        Ok(())
    }

    fn discard(self: Box<Self>) -> Result<(), ProtocolError> {
        fs::remove_file(&self.path).map_err(io_err("removing refused set", &self.path))?;
        sync_dir(&self.dir);
        Ok(())
    }
}

/// Chunks read and verified by a background thread a few chunks ahead of the online phase, so
/// disk reads and digest checks overlap with the protocol.
struct Prefetch {
    rx: mpsc::Receiver<Result<Option<StoredChunk>, GcError>>,
}

impl Prefetch {
    fn start<R: Read + Send + 'static>(mut r: R, name: String) -> Self {
        let (tx, rx) = mpsc::sync_channel(PREFETCH);
        std::thread::spawn(move || loop {
            let item = StoredChunk::read_from(&mut r).map_err(|e| match e {
                GcError::Storage(m) => GcError::Storage(format!("set {name}: {m}")),
                other => other,
            });
            let last = !matches!(item, Ok(Some(_)));
            if tx.send(item).is_err() || last {
                return;
            }
        });
        Prefetch { rx }
    }
}

impl ChunkSource for Prefetch {
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError> {
        self.rx
            .recv()
            .unwrap_or_else(|_| Err(GcError::Storage("chunk reader stopped".into())))
    }
}
