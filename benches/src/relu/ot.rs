//! `pi-bench relu --protocol ot`: OT-based ReLUs on Ferret silent OT.

use std::thread;
use std::time::Instant;

use pi_ot::{client_offline, server_offline};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{check, Inputs, ReluArgs};

/// Runs the OT benchmark; returns its JSON line.
pub(crate) fn run(args: &ReluArgs, inp: &Inputs) -> anyhow::Result<serde_json::Value> {
    let p = inp.p;
    let n = inp.a.len();
    let params = vec![p; n];
    let (a, sizes) = (&inp.a, &inp.sizes);
    let inputs: Vec<(u64, u64)> = inp.b.iter().zip(&inp.n).map(|(&b, &n)| (b, n)).collect();

    let (mut sch, mut cch) = pi_net::loopback_pair()?;
    let t0 = Instant::now();
    let (server, client) = thread::scope(|sc| {
        let params = &params;
        let srv = sc.spawn(move || -> anyhow::Result<_> {
            let mut rng = ChaCha20Rng::from_entropy();
            let t = Instant::now();
            let mut s = server_offline(&mut sch, params, &mut rng)?;
            let offline = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut out = Vec::with_capacity(a.len());
            let mut at = 0;
            for &m in sizes {
                out.extend(s.online(&mut sch, &a[at..at + m])?);
                at += m;
            }
            Ok((s.stats(), offline, t.elapsed().as_secs_f64(), out))
        });
        let cli = (|| -> anyhow::Result<_> {
            let mut rng = ChaCha20Rng::from_entropy();
            let t = Instant::now();
            let mut c = client_offline(&mut cch, params, &inputs, &mut rng)?;
            let offline = t.elapsed().as_secs_f64();
            let t = Instant::now();
            for &m in sizes.iter() {
                c.online(&mut cch, m)?;
            }
            Ok((c.stats(), offline, t.elapsed().as_secs_f64()))
        })();
        (srv.join(), cli)
    });
    let total = t0.elapsed().as_secs_f64();
    let (s, s_off, s_on, out) = server.map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let (c, c_off, c_on) = client?;
    check(inp, &out)?;

    let nf = n as f64;
    let us = |x: f64| x * 1e6 / nf;
    let per = |b: u64| b as f64 / nf;
    let total_bytes = s.offline_bytes() + s.online_bytes;
    Ok(serde_json::json!({
        "protocol": "ot",
        "relus": n,
        "in_bits": p.in_bits, "shift": p.shift, "ring_bits": p.out_bits,
        "forward_cots_per_relu": s.forward_cots as f64 / nf,
        "reverse_cots_per_relu": s.reverse_cots as f64 / nf,
        "setup_bytes_per_relu": per(s.setup_bytes),
        "ferret_bytes_per_relu": per(s.ferret_bytes),
        "reverse_ot_bytes_per_relu": per(s.reverse_bytes),
        "product_bytes_per_relu": per(s.product_bytes),
        "offline_bytes_per_relu": per(s.offline_bytes()),
        "online_bytes_per_relu": per(s.online_bytes),
        "total_bytes_per_relu": per(total_bytes),
        "ferret_server_us_per_relu": us(s.ferret_seconds),
        "ferret_client_us_per_relu": us(c.ferret_seconds),
        "material_server_us_per_relu": us(s.material_seconds),
        "material_client_us_per_relu": us(c.material_seconds),
        "reverse_ot_server_us_per_relu": us(s.reverse_seconds),
        "reverse_ot_client_us_per_relu": us(c.reverse_seconds),
        "offline_wall_us_per_relu": us(s_off.max(c_off)),
        "online_wall_us_per_relu": us(s_on.max(c_on)),
        "total_wall_us_per_relu": us(total),
        "total_wall_s": total,
        "online_calls": sizes.len(),
        "threads": args.threads.max(1),
        "correct": true,
    }))
}
