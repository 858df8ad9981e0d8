//! Server side of banked preprocessing: offline phases sealed into tickets, and tickets redeemed
//! for one online phase each, after the replay store recorded them as used.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pi_he::ServerHe;
use pi_net::{Channel, NetError};

use super::offline::{self, ServerMaterial};
use super::{online, phase_name, ServedModel};
use crate::bank::replay::ReplayGuard;
use crate::bank::ticket::{self, TicketKey};
use crate::budget::SessionLimits;
use crate::messages::{TicketIssued, TicketOffer, TicketVerdict};
use crate::nonlinear::ReluProtocol;
use crate::session::csprng;
use crate::ProtocolError;

/// Tickets offered in one redeem session before the server gives up on the client.
const MAX_OFFERS: usize = 16;
/// Largest ticket offer frame (a 213-byte ticket and 4 bytes per ReLU layer of its plan).
const OFFER_MAX_FRAME: usize = 64 << 10;

/// How this server banks: the key its tickets are sealed under, their lifetime, and the store
/// that records used ticket ids.
pub struct Banking {
    key: TicketKey,
    ttl: Duration,
    replay: Arc<dyn ReplayGuard>,
}

impl Banking {
    /// Banking with `key`, tickets valid for `ttl`, used ids kept in `replay`.
    pub fn new(key: TicketKey, ttl: Duration, replay: Arc<dyn ReplayGuard>) -> Self {
        Banking { key, ttl, replay }
    }

    /// The public id of the ticket key (hex).
    pub fn key_id(&self) -> String {
        self.key.id_hex()
    }

    /// Where used ticket ids are kept.
    pub fn replay_store(&self) -> String {
        self.replay.describe()
    }
}

/// What happened to tickets in one session (for the server's log).
#[derive(Clone, Debug, Default)]
pub struct TicketLog {
    /// Ids of tickets issued (preprocess).
    pub issued: Vec<String>,
    /// Id of the ticket redeemed (redeem).
    pub redeemed: Option<String>,
    /// Refused tickets: why.
    pub refused: Vec<String>,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `count` offline phases, each followed by its sealed ticket; the server keeps nothing.
pub(crate) fn preprocess<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
    he: &ServerHe,
    banking: &Banking,
    count: u32,
    log: &mut TicketLog,
) -> Result<(), ProtocolError> {
    let mut rng = csprng();
    let budget = served.bank_budget;
    let plan = crate::nonlinear::plan_digest(served.bank_relu_protocols());
    for i in 0..count {
        ch.begin_phase(
            &phase_name("offline", i, count),
            Some(limits.phase_time(&budget.offline)),
            budget.offline.up.max_frame,
        );
        let material = offline::offline(ch, served, he, &mut rng, true)?;
        let now = unix_now();
        let ticket = ticket::seal(
            &banking.key,
            served.fingerprint(),
            &plan,
            &material.secrets(),
            now,
            now.saturating_add(banking.ttl.as_secs()),
        );
        drop(material);
        if let Ok(h) = ticket::TicketHeader::parse(&ticket) {
            log.issued.push(h.id_hex());
        }
        ch.send(&TicketIssued { ticket })?;
        ch.flush()?;
    }
    Ok(())
}

/// Opens offered tickets until one is good, records it as used, then runs its online phase.
pub(crate) fn redeem<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: &Banking,
    log: &mut TicketLog,
) -> Result<(), ProtocolError> {
    for _ in 0..MAX_OFFERS {
        ch.begin_phase("ticket", Some(limits.phase_slack), OFFER_MAX_FRAME);
        let offer: TicketOffer = match ch.recv() {
            Ok(o) => o,
            // A client with no other set to offer hangs up (or says why) after a refusal.
            Err(NetError::Closed | NetError::Aborted(_)) if !log.refused.is_empty() => {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        };
        let now = unix_now();
        let plan = offer.relu_protocols;
        let digest = crate::nonlinear::plan_digest(&plan);
        let opened = match ticket::open(
            &banking.key,
            &offer.ticket,
            served.fingerprint(),
            &digest,
            now,
        ) {
            Ok(o) => o,
            Err(e) => {
                refuse(ch, log, e.to_string(), false)?;
                continue;
            }
        };
        // A sealed plan is one this server chose for this model; checked again all the same.
        let online_budget = match valid_plan(served, &plan) {
            Ok(()) => served.online_phase_for(&plan)?,
            Err(reason) => {
                refuse(ch, log, reason, false)?;
                continue;
            }
        };
        let id = opened.header.id_hex();
        // Recorded before anything online is sent: a second use is refused, even on another
        // replica sharing the store, and a store that cannot answer stops the session.
        match banking
            .replay
            .consume(&opened.header.id, opened.header.expires, now)
        {
            Ok(true) => {}
            Ok(false) => {
                refuse(
                    ch,
                    log,
                    format!("ticket {id} was already used (every banked set runs once)"),
                    false,
                )?;
                continue;
            }
            Err(e) => {
                let reason = format!(
                    "{e}; the ticket was not used, so the set is kept: retry when the server's replay store is back"
                );
                refuse(ch, log, reason.clone(), true)?;
                return Err(ProtocolError::Bank(reason));
            }
        }
        ch.send(&TicketVerdict::Accepted)?;
        ch.flush()?;
        log.redeemed = Some(id);
        ch.begin_phase(
            "online",
            Some(limits.phase_time(&online_budget)),
            online_budget.up.max_frame,
        );
        let material = ServerMaterial::restore(served, &opened.secrets, &plan)?;
        return online::online(ch, &served.program, material);
    }
    Err(ProtocolError::Violation(format!(
        "{MAX_OFFERS} tickets refused in one session"
    )))
}

/// Whether `plan` names one protocol per ReLU layer of the served model, OT only where the layer
/// is a plain ReLU.
fn valid_plan(served: &ServedModel, plan: &[ReluProtocol]) -> Result<(), String> {
    let layers = served.program.layer_spans().len();
    if plan.len() != layers || served.program.restrict_plan(plan) != plan {
        return Err(format!(
            "the set's ReLU plan ({} layers) does not fit this model ({layers} ReLU layers)",
            plan.len()
        ));
    }
    Ok(())
}

fn refuse<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    log: &mut TicketLog,
    reason: String,
    retry: bool,
) -> Result<(), ProtocolError> {
    log.refused.push(reason.clone());
    ch.send(&TicketVerdict::Refused { reason, retry })?;
    ch.flush()?;
    Ok(())
}
