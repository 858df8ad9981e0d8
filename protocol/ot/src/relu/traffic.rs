//! What one OT ReLU session puts on the wire, from the parameter list alone (frame limits and
//! deadlines are derived from it before any byte arrives). Counts frames as `pi-gc` does:
//! payload bytes, excluding the transport's own per-frame overhead.

use pi_gc::{Flow, ReluParams};

use super::online::message_sizes;
use super::shape::Shape;
use super::{forward_cots, runs, HELLO_LEN};
use crate::ferret::{FerretParams, FerretPlan};
use crate::msg::{DIGEST, HEADER};

/// Traffic of one OT ReLU offline phase and of its online phase (client → server is "up").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtTraffic {
    pub offline_up: Flow,
    pub offline_down: Flow,
    /// Online, when every run of identical parameters is one call (a session that splits them
    /// into more calls sends more, smaller frames).
    pub online_up: Flow,
    pub online_down: Flow,
}

fn add(f: &mut Flow, len: usize) {
    f.bytes += len as u64;
    f.frames += 1;
    f.max_frame = f.max_frame.max(len);
}

/// `pi-gc`'s SoftSpoken setup: base OT (the extension receiver sends A, the sender the B points),
/// then the receiver's GGM level sums.
fn softspoken_setup(receiver: &mut Flow, sender: &mut Flow) {
    add(receiver, 1 + 32);
    add(sender, 1 + 128 * 32);
    add(receiver, 1 + 128 * 32);
}

/// Tree-correction frames Ferret sends (server → client) to deliver `count` COTs.
fn ferret_frames(plan: FerretPlan, count: usize, down: &mut Flow) {
    let mut params = FerretParams::B10;
    let mut delivered = 0usize;
    let mut next_tree = 0usize;
    let mut reserved = 0usize;
    while delivered < count {
        let trees = (65536usize >> params.depth)
            .max(1)
            .min(params.t - next_tree);
        add(down, HEADER + trees * params.depth as usize * 16 + DIGEST);
        let produced = trees << params.depth;
        let to_reserve = (plan.main.base() - reserved).min(produced);
        reserved += to_reserve;
        delivered += produced - to_reserve;
        next_tree += trees;
        if next_tree == params.t {
            params = plan.main;
            next_tree = 0;
            reserved = 0;
        }
    }
}

/// The traffic of one OT ReLU per entry of `params` (each run of identical parameters online
/// in one call).
pub fn traffic(params: &[ReluParams]) -> OtTraffic {
    let mut t = OtTraffic::default();
    add(&mut t.offline_down, HEADER + HELLO_LEN + DIGEST);
    let rs = runs(params);
    let fwd = forward_cots(&rs);
    if fwd > 0 {
        // SoftSpoken bootstrap (client = receiver) and its correction, then the trees.
        softspoken_setup(&mut t.offline_up, &mut t.offline_down);
        let words = FerretParams::B10.base().div_ceil(128);
        add(&mut t.offline_up, HEADER + 16 * words * 16 + DIGEST);
        ferret_frames(FerretPlan::for_count(fwd), fwd, &mut t.offline_down);
    }
    let reverse: usize = rs.iter().filter(|r| !r.shape.trivial).map(|r| r.len).sum();
    if reverse > 0 {
        // Reverse SoftSpoken: the server is the receiver.
        softspoken_setup(&mut t.offline_down, &mut t.offline_up);
        add(
            &mut t.offline_down,
            HEADER + 16 * reverse.div_ceil(128) * 16 + DIGEST,
        );
    }
    let products: usize = rs
        .iter()
        .map(|r| {
            let s = r.shape;
            (if s.has_f {
                super::bits::field_bytes(r.len, s.m)
            } else {
                0
            }) + (if s.lift {
                super::bits::field_bytes(r.len, s.k - s.m)
            } else {
                0
            })
        })
        .sum();
    add(&mut t.offline_down, HEADER + products + DIGEST);
    for r in &rs {
        for (who, len) in message_sizes(&Shape::new(&params[r.start]), r.len) {
            let f = if who == 0 {
                &mut t.online_down
            } else {
                &mut t.online_up
            };
            add(f, HEADER + len + DIGEST);
        }
    }
    t
}
