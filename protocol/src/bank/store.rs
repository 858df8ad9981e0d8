//! What a client bank must offer the sessions; the bank on disk is the `pi-bank` crate's.
//!
//! A set is written as a stream while it is preprocessed (its garbled chunks through
//! [`pi_gc::ChunkSink`], then its [`SetTail`]) and becomes visible only when complete. Online, a
//! set is first *claimed* (no other run can take it), then *consumed* (deleted) as soon as the
//! server accepts its ticket and before anything online is sent; a set whose ticket the server
//! did not consume can be restored, one it refused for good is discarded.

use pi_gc::{ChunkSink, ChunkSource};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::report::OfflineReport;
use crate::ProtocolError;
use crate::PublicModel;

/// Everything of a banked set but its garbled chunks: written after them, read before them.
#[derive(Clone, Serialize, Deserialize)]
pub struct SetTail {
    /// Fingerprint of the public model it was made for ([`crate::PublicModel::bank_fingerprint`]).
    pub model: [u8; 32],
    /// That public model (the client plans and quantises before it connects).
    pub public: PublicModel,
    /// The server address it was preprocessed against (sets for it are used first).
    pub server: String,
    /// ReLU circuits in the set.
    pub relus: u64,
    /// The client's input mask r₀ (secret).
    pub input_mask: Vec<u64>,
    /// The client's share of the logits (secret).
    pub output_share: Vec<u64>,
    /// Decoding offsets of the garbled circuits (one per circuit of the garbled layers).
    pub offsets: Vec<u64>,
    /// The OT layers' material (`pi_ot::OtReluClient::to_bytes`; empty without OT layers;
    /// secret). The set's ReLU plan is `public.relu_protocols`.
    pub ot: Vec<u8>,
    /// The garbling's hash nonce (public; the server sent it in its garbling hello).
    pub gc_hash_nonce: u128,
    /// The server's sealed ticket.
    pub ticket: Vec<u8>,
    /// How the offline phase went.
    pub report: OfflineReport,
}

impl Drop for SetTail {
    fn drop(&mut self) {
        self.input_mask.zeroize();
        self.output_share.zeroize();
        self.offsets.zeroize();
        self.ot.zeroize();
    }
}

impl SetTail {
    /// bincode bytes (the store frames and checksums them).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        bincode::serialize(self).map_err(|e| ProtocolError::Bank(format!("encoding a set: {e}")))
    }

    /// Parses [`SetTail::to_bytes`], refusing anything longer than `limit` bytes.
    pub fn from_bytes(bytes: &[u8], limit: u64) -> Result<Self, ProtocolError> {
        use bincode::Options;
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(limit)
            .deserialize(bytes)
            .map_err(|e| ProtocolError::Bank(format!("decoding a set: {e}")))
    }
}

/// A set being written by `preprocess`.
pub trait SetWriter: ChunkSink {
    /// Completes the set with its tail (after the server issued its ticket); the set is then
    /// durable and visible. Returns the set's name.
    fn finish(self: Box<Self>, tail: &SetTail) -> Result<String, ProtocolError>;
}

/// Where `preprocess` puts its sets.
pub trait BankWriter {
    /// Starts a new set; an error or a writer dropped without `finish` leaves no set behind.
    fn begin(&mut self) -> Result<Box<dyn SetWriter>, ProtocolError>;
}

/// A set taken out of the bank for one online phase.
pub trait ClaimedSet {
    /// The set's name (for messages).
    fn name(&self) -> &str;
    /// Its tail (ticket, masks, offsets).
    fn tail(&self) -> &SetTail;
    /// The server accepted the ticket: the set is deleted now, and its chunks are read from the
    /// returned source (still open) during the online phase.
    fn consume(self: Box<Self>) -> Result<Box<dyn ChunkSource>, ProtocolError>;
    /// The server did not use the ticket (its replay store was unreachable): back into the bank.
    fn restore(self: Box<Self>) -> Result<(), ProtocolError>;
    /// The server refused the ticket for good (expired, foreign key, tampered, used): deleted.
    fn discard(self: Box<Self>) -> Result<(), ProtocolError>;
}

/// Where `infer` takes its sets from.
pub trait BankReader {
    /// Claims the oldest complete set preprocessed against `server`, or else the oldest of all;
    /// with `model`, only sets made for that public model.
    fn claim(
        &mut self,
        server: &str,
        model: Option<&[u8; 32]>,
    ) -> Result<Option<Box<dyn ClaimedSet>>, ProtocolError>;
    /// A one-line description of what the bank holds (for the error when nothing fits).
    fn describe(&self) -> String;
}
