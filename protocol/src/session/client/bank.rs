//! Client side of banked preprocessing: `preprocess` banks sets (material streamed to the bank,
//! then the server's ticket), `infer` takes one set out of the bank and runs only the online phase.

use std::io::{Read, Write};
use std::time::Instant;

use crate::nonlinear::ClientRelus;
use pi_net::Channel;
use serde::{Deserialize, Serialize};

use super::offline::{offline_banked, ClientMaterial};
use super::{
    client_program, handshake, he_setup, online, quantize, run_on_connection, ClientOptions,
    HELLO_REPLY_MAX,
};
use crate::bank::store::{BankReader, BankWriter, ClaimedSet, SetTail};
use crate::bank::ticket::TicketHeader;
use crate::messages::{SessionMode, TicketIssued, TicketOffer, TicketVerdict};
use crate::report::{InferenceReport, OfflineReport};
use crate::session::server::phase_name;
use crate::session::{csprng, secs};
use crate::ProtocolError;

/// One banked set, as `preprocess` made it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BankedSetReport {
    /// The set's name in the bank.
    pub name: String,
    pub offline: OfflineReport,
    /// Bytes of its sealed ticket.
    pub ticket_bytes: usize,
    /// Unix seconds after which the server refuses it.
    pub expires: u64,
}

/// What `preprocess` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreprocessReport {
    pub model: String,
    pub relus: u64,
    pub macs: u64,
    pub sets: Vec<BankedSetReport>,
    pub session_seconds: f64,
}

/// What `infer` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BankedInference {
    pub model: String,
    pub relus: u64,
    pub macs: u64,
    /// The set that was used (and is gone from the bank).
    pub set: String,
    /// The inference; `offline` is the set's preprocessing, `total_seconds` what the user waited
    /// for (connect, ticket, online phase).
    pub report: InferenceReport,
    /// Sets the server refused for good (discarded), with its reasons.
    pub discarded: Vec<(String, String)>,
}

/// Connects to `addr` and banks `count` sets into `bank`.
pub fn preprocess(
    addr: &str,
    count: u32,
    bank: &mut dyn BankWriter,
    options: &ClientOptions,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<PreprocessReport, ProtocolError> {
    run_on_connection(addr, options, |ch| {
        preprocess_on(ch, addr, count, bank, progress)
    })
}

/// Banks `count` sets over a connected channel; each set is complete in the bank (chunks, tail,
/// ticket) before the next starts, so a failure loses at most the set in progress.
pub fn preprocess_on<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    server: &str,
    count: u32,
    bank: &mut dyn BankWriter,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<PreprocessReport, ProtocolError> {
    let start = Instant::now();
    if count == 0 {
        return Err(ProtocolError::BadInput("count must be at least 1".into()));
    }
    ch.begin_phase("hello", None, HELLO_REPLY_MAX);
    let public = handshake::hello(ch, count, SessionMode::Preprocess)?;
    let program = client_program(&public)?;
    let budget = program.budget_for(&public.relu_protocols)?;
    let fingerprint = public.bank_fingerprint();
    let mut rng = csprng();
    let he = he_setup(ch, &program, &mut rng)?;
    let mut sets = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        ch.begin_phase(
            &phase_name("offline", i as u32, count),
            None,
            budget.offline.down.max_frame,
        );
        let mut writer = bank.begin()?;
        let (input_mask, output_share, mut relus, report) = offline_banked(
            ch,
            &program,
            &public.relu_protocols,
            &he,
            &mut rng,
            i,
            count as usize,
            progress,
            writer.as_mut(),
        )?;
        let issued: TicketIssued = ch.recv()?;
        let header = TicketHeader::parse(&issued.ticket).map_err(|e| {
            ProtocolError::Violation(format!("the server issued a bad ticket: {e}"))
        })?;
        let tail = SetTail {
            model: fingerprint,
            public: public.clone(),
            server: server.to_string(),
            relus: program.relus(),
            input_mask,
            output_share,
            offsets: std::mem::take(&mut relus.offsets),
            ot: std::mem::take(&mut *relus.ot),
            gc_hash_nonce: relus.gc.hash_nonce,
            ticket: issued.ticket,
            report: report.clone(),
        };
        let name = writer.finish(&tail)?;
        sets.push(BankedSetReport {
            name,
            offline: report,
            ticket_bytes: tail.ticket.len(),
            expires: header.expires,
        });
    }
    progress("done", count as usize, count as usize);
    Ok(PreprocessReport {
        model: program.name().to_string(),
        relus: program.relus(),
        macs: program.macs(),
        sets,
        session_seconds: secs(start),
    })
}

/// Takes one set out of `bank`, connects to `addr` and runs one online inference of `image`.
pub fn infer(
    addr: &str,
    shape: [usize; 3],
    image: &[f32],
    bank: &mut dyn BankReader,
    options: &ClientOptions,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<BankedInference, ProtocolError> {
    let start = Instant::now();
    run_on_connection(addr, options, |ch| {
        infer_on(ch, addr, shape, image, bank, progress, start)
    })
}

/// One banked inference over a connected channel (`start`: when the user's wait began).
///
/// The hello and the first ticket offer leave in one flush, so the online phase starts one
/// round trip after connecting. A set is claimed before its ticket leaves, deleted as soon as
/// the server accepts it (before the masked input is sent), restored when the server did not
/// use it, and discarded when the server refused it for good (the next set is then offered).
pub fn infer_on<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    server: &str,
    shape: [usize; 3],
    image: &[f32],
    bank: &mut dyn BankReader,
    progress: &dyn Fn(&str, usize, usize),
    start: Instant,
) -> Result<BankedInference, ProtocolError> {
    let mut set = bank.claim(server, None)?.ok_or_else(|| {
        ProtocolError::Bank(format!(
            "no banked set to use ({}); run `pi-client preprocess` first",
            bank.describe()
        ))
    })?;
    // Everything the online phase needs is checked before the ticket leaves.
    let prepared = match prepare(set.as_ref(), shape, image) {
        Ok(p) => p,
        Err(e @ ProtocolError::BadInput(_)) => {
            set.restore()?;
            return Err(e);
        }
        Err(e) => {
            let reason = e.to_string();
            let name = set.name().to_string();
            set.discard()?;
            return Err(ProtocolError::Bank(format!(
                "set {name} is unusable ({reason}); discarded"
            )));
        }
    };
    let (program, input) = prepared;
    let model = set.tail().model;
    let logit_bound = set.tail().public.logit_bound;
    ch.begin_phase("hello", None, HELLO_REPLY_MAX);
    handshake::send_hello(ch, 1, SessionMode::Redeem, Some(model))?;
    ch.send(&offer(set.as_ref()))?;
    ch.flush()?;
    let public = match handshake::accepted(ch) {
        Ok(p) => p,
        Err(e) => {
            // Rejected before the server read the ticket: the set is intact.
            set.restore()?;
            return Err(e);
        }
    };
    if public.bank_fingerprint() != model {
        set.restore()?;
        return Err(ProtocolError::Violation(
            "the server accepted a banked set for another model".into(),
        ));
    }
    let mut discarded = Vec::new();
    let (set, source) = loop {
        match ch.recv::<TicketVerdict>() {
            Ok(TicketVerdict::Accepted) => {
                let name = set.name().to_string();
                let tail = set.tail().clone();
                break ((name, tail), set.consume()?);
            }
            Ok(TicketVerdict::Refused {
                reason,
                retry: true,
            }) => {
                let name = set.name().to_string();
                set.restore()?;
                return Err(ProtocolError::TicketRefused { set: name, reason });
            }
            Ok(TicketVerdict::Refused { reason, .. }) => {
                discarded.push((set.name().to_string(), reason));
                set.discard()?;
                progress(
                    "ticket refused, next set",
                    discarded.len(),
                    discarded.len() + 1,
                );
                // Another set for the same model, offered in the same session.
                let next = bank.claim(server, Some(&model))?;
                match next {
                    Some(s) => {
                        set = s;
                        ch.send(&offer(set.as_ref()))?;
                        ch.flush()?;
                    }
                    None => {
                        let (name, reason) = discarded.last().cloned().unwrap_or_default();
                        return Err(ProtocolError::TicketRefused {
                            set: name,
                            reason: format!(
                                "{reason}; the set was discarded and no other set for this model is banked"
                            ),
                        });
                    }
                }
            }
            Err(e) => {
                // No verdict: the server may have recorded the ticket, so the set is never reused.
                let name = set.name().to_string();
                set.discard()?;
                return Err(ProtocolError::Bank(format!(
                    "connection lost before the server answered for set {name} ({e}); the set is discarded"
                )));
            }
        }
    };
    let ((name, tail), source) = (set, source);
    let gc = pi_gc::ClientOffline {
        stats: Default::default(),
        hash_nonce: tail.gc_hash_nonce,
    };
    let relus = ClientRelus::restore(
        &program,
        &tail.public.relu_protocols,
        source,
        &gc,
        tail.offsets.clone(),
        &tail.ot,
    )?;
    let material = ClientMaterial {
        input_mask: tail.input_mask.clone(),
        output_share: tail.output_share.clone(),
        relus,
        report: tail.report.clone(),
    };
    progress("online", 0, 1);
    let phase = program.online_phase_for(&tail.public.relu_protocols)?;
    ch.begin_phase("online", None, phase.down.max_frame);
    let mut report = online::online(ch, &program, &input, material)?;
    crate::plausible::check_logits(&report.logits, logit_bound)?;
    report.total_seconds = secs(start);
    progress("done", 1, 1);
    Ok(BankedInference {
        model: program.name().to_string(),
        relus: program.relus(),
        macs: program.macs(),
        set: name,
        report,
        discarded,
    })
}

/// The ticket offer of a set: its ticket and the ReLU plan it was made with.
fn offer(set: &dyn ClaimedSet) -> TicketOffer {
    TicketOffer {
        ticket: set.tail().ticket.clone(),
        relu_protocols: set.tail().public.relu_protocols.clone(),
    }
}

/// The program and quantised input for a claimed set, after checking the set is whole.
fn prepare(
    set: &dyn ClaimedSet,
    shape: [usize; 3],
    image: &[f32],
) -> Result<(crate::Program, Vec<u64>), ProtocolError> {
    let tail = set.tail();
    crate::plausible::check_input(&tail.public.config, image)?;
    let program = crate::Program::for_client_online(tail.public.to_model()?, tail.public.config)?;
    if tail.public.bank_fingerprint() != tail.model {
        return Err(ProtocolError::Bank("model fingerprint mismatch".into()));
    }
    let relus = program.relus() as usize;
    let (gc_circuits, _) = crate::nonlinear::plan_counts(&program, &tail.public.relu_protocols)
        .map_err(|e| ProtocolError::Bank(e.to_string()))?;
    if tail.relus as usize != relus
        || tail.offsets.len() != gc_circuits
        || tail.input_mask.len() != program.input_len()
    {
        return Err(ProtocolError::Bank(
            "material does not fit its model".into(),
        ));
    }
    crate::nonlinear::check_stored_ot(&program, &tail.public.relu_protocols, &tail.ot)
        .map_err(|e| ProtocolError::Bank(format!("OT material: {e}")))?;
    let input = quantize(&program, shape, image)?;
    Ok((program, input))
}
