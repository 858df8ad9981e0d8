//! Banked sets whose ReLU layers run the OT-based protocol (all or some of them): the private
//! output equals the fixed-point reference bit for bit, a set runs once, and the set keeps the
//! plan it was made with (sealed in its ticket) whatever the server's choice is today.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pi_bank::DirBank;
use protocol::bank::replay::{MemoryReplay, ReplayGuard};
use protocol::bank::store::BankReader;
use protocol::messages::{
    ClientHello, ServerHello, SessionMode, TicketOffer, TicketVerdict, PROTOCOL_VERSION,
};
use protocol::{ReluChoice, ReluProtocol};

#[test]
fn ot_banked_sets_equal_the_reference_run_once_and_replays_are_refused() {
    let m = model(11);
    let s = served_with(&m, ReluChoice::Ot);
    assert!(s.bank_relu_protocols().contains(&ReluProtocol::Ot));
    let b = banking([11; 32], 3600, Arc::new(MemoryReplay::default()));
    let dir = tempfile::tempdir().unwrap();
    preprocess(&s, &b, dir.path(), 2);
    let st = DirBank::open(dir.path()).unwrap().status().unwrap();
    assert!(st.sets.iter().all(|x| x.ticket_bytes == 213));
    let copy = dir.path().join("copy");
    std::fs::copy(&set_files(dir.path())[0], &copy).unwrap();
    for seed in 0..2 {
        let img = image(seed);
        let (r, srv) = infer(&s, &b, dir.path(), &img);
        let r = r.expect("banked inference");
        assert_eq!(r.report.logits, reference(&m, &img), "bit for bit");
        assert!(r.report.online.relu.ot_relus > 0);
        assert_eq!(srv.expect("server").inferences, 1);
    }
    assert_eq!(sets(dir.path()), 0);
    // The first set again: its ticket was used.
    std::fs::copy(
        &copy,
        dir.path().join("set-00000000000000000000-replay.pibank"),
    )
    .unwrap();
    let (r, srv) = infer(&s, &b, dir.path(), &image(0));
    let e = r.expect_err("replay").to_string();
    assert!(e.contains("already used"), "{e}");
    assert_eq!(srv.expect("server").inferences, 0);
}

#[test]
fn a_set_keeps_its_plan_when_the_server_changes_its_choice() {
    let m = model(12);
    let gc = served_with(&m, ReluChoice::Gc);
    let layers = gc.relu_protocols().len();
    assert!(layers >= 2, "{layers} ReLU layers");
    // Alternate the protocols layer by layer.
    let mixed: Vec<ReluProtocol> = (0..layers)
        .map(|i| {
            if i % 2 == 0 {
                ReluProtocol::Ot
            } else {
                ReluProtocol::Gc
            }
        })
        .collect();
    let mixed_server = served_with(&m, ReluChoice::PerLayer(mixed.clone()));
    let ot = served_with(&m, ReluChoice::Ot);
    let replay: Arc<dyn ReplayGuard> = Arc::new(MemoryReplay::default());
    let b = banking([12; 32], 3600, replay);
    let dir = tempfile::tempdir().unwrap();
    // Banked with a mixed plan, redeemed at a server that now garbles every layer; banked with
    // garbled layers, redeemed at one that now runs OT.
    preprocess(&mixed_server, &b, dir.path(), 1);
    let img = image(3);
    let (r, srv) = infer(&gc, &b, dir.path(), &img);
    let r = r.expect("mixed set at a gc server");
    assert_eq!(r.report.logits, reference(&m, &img));
    assert!(r.report.online.relu.ot_relus > 0 && r.report.online.relu.gc_relus > 0);
    srv.expect("server");
    preprocess(&gc, &b, dir.path(), 1);
    let (r, _) = infer(&ot, &b, dir.path(), &img);
    let r = r.expect("gc set at an ot server");
    assert_eq!(r.report.logits, reference(&m, &img));
    assert_eq!(r.report.online.relu.ot_relus, 0);
}

#[test]
fn a_ticket_offered_with_another_plan_is_refused_and_not_consumed() {
    let m = model(13);
    let s = served_with(&m, ReluChoice::Ot);
    let b = banking([13; 32], 3600, Arc::new(MemoryReplay::default()));
    let dir = tempfile::tempdir().unwrap();
    preprocess(&s, &b, dir.path(), 1);
    let (ticket, model_fp, plan) = {
        let mut bank = DirBank::open(dir.path()).unwrap();
        let set = bank.claim("", None).unwrap().expect("a set");
        let t = set.tail();
        let out = (t.ticket.clone(), t.model, t.public.relu_protocols.clone());
        set.restore().unwrap();
        // A restored set can be claimed again at once (its reader thread may still run).
        let again = bank.claim("", None).unwrap().expect("claimable again");
        again.restore().unwrap();
        out
    };
    // A client that offers the ticket with the garbled plan (its own set altered).
    let (addr, h) = server(s.clone(), b.clone());
    let mut ch = pi_net::connect(
        &addr,
        &pi_net::ConnectOptions::plaintext(Duration::from_secs(60)),
    )
    .unwrap();
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch: 1,
        mode: SessionMode::Redeem,
        bank_model: Some(model_fp),
    })
    .unwrap();
    ch.send(&TicketOffer {
        ticket,
        relu_protocols: vec![ReluProtocol::Gc; plan.len()],
    })
    .unwrap();
    ch.flush().unwrap();
    assert!(matches!(
        ch.recv::<ServerHello>().unwrap(),
        ServerHello::Accept { .. }
    ));
    match ch.recv::<TicketVerdict>().unwrap() {
        TicketVerdict::Refused { reason, retry } => {
            assert!(!retry);
            assert!(reason.contains("another ReLU plan"), "{reason}");
        }
        v => panic!("accepted: {v:?}"),
    }
    drop(ch);
    let srv = h.join().unwrap().expect("the server ends cleanly");
    assert_eq!(srv.inferences, 0);
    // Not recorded as used: the set, offered as made, still runs.
    let img = image(4);
    let (r, _) = infer(&s, &b, dir.path(), &img);
    assert_eq!(r.expect("the set runs").report.logits, reference(&m, &img));
}
