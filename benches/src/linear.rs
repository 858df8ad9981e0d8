//! `pi-bench linear`: the offline HE phase of every linear layer (conv / FC) of a network, run
//! between a client thread and a server thread over a real loopback TCP socket.
//!
//! Usage:
//!   pi-bench linear --model MODEL.onnx            (every Conv2d / Linear of an ONNX model)
//!   pi-bench linear --zoo hrn-5x5x3x:16           (hrn-5x5x3x:M, hrn-2x5x3x:M, resnet18)
//!   pi-bench linear --conv C_IN,C_OUT,H,W,K,STRIDE[,GROUPS] [--check]
//!   pi-bench linear --fc IN,OUT [--check]
//! Options: --threads N (rayon pool size), --ring-bits K (default 52), --flood-bits S,
//! --pack-bits L (0..=3, reply packing depth; default: the deepest 128-bit security allows),
//! --link-mbps M (link speed the block planner weighs compute against; default 100),
//! --reference-costs (plan with the development machine's HE operation costs instead of
//! measuring this host's first, as a server here would).
//! Prints one JSON line: {"he_seconds", "bytes_client_to_server", "bytes_server_to_client",
//! "op_costs", "layers": [...]}; each layer has its measured wall and CPU seconds (both parties,
//! this process) next to the estimate `pi-opt count` makes for it ("est_seconds",
//! "est_cpu_seconds": its block plan at the measured operation costs).

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use models::fixed::FixedConfig;
use models::Model;
use pi_he::{
    client_linear, prepare_layer, server_linear, ClientHe, HeParams, LinearShape, PreparedLayer,
    ServerHe,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;

/// One linear layer to benchmark: its name, shape and quantised weights.
struct Layer {
    name: String,
    shape: LinearShape,
    weights: Vec<i64>,
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|e| anyhow!("bad number {v:?}: {e}"))
        })
        .collect()
}

/// Conv / Linear layers of a model with their fixed-point weights (the protocol's own compilation).
fn model_layers(model: &Model, ring_bits: u32) -> Result<Vec<Layer>> {
    let config = FixedConfig {
        ring_bits,
        ..FixedConfig::default()
    };
    let program = protocol::Program::new(model.clone(), config)
        .map_err(|e| anyhow!("compiling the model: {e}"))?;
    Ok(program
        .linear_layers()
        .map(|(name, shape, weights)| Layer {
            name: name.to_string(),
            shape: shape.clone(),
            weights: weights.to_vec(),
        })
        .collect())
}

fn zoo_model(spec: &str) -> Result<Model> {
    let (name, m) = match spec.split_once(':') {
        Some((n, m)) => (n, m.parse::<usize>().context("zoo width")?),
        None => (spec, 0),
    };
    let build = |blocks: Vec<usize>, widths: Vec<usize>| {
        models::zoo::ResNetSpec::new(blocks, widths, 10, [3, 32, 32])
            .build()
            .map_err(|e| anyhow!("{e}"))
    };
    match name {
        "resnet18" => Ok(models::zoo::resnet18_cifar(10)),
        "hrn-5x5x3x" => build(vec![2, 2, 2, 2], vec![m, 5 * m, 25 * m, 75 * m]),
        "hrn-2x5x3x" => build(vec![2, 2, 2, 2], vec![m, 2 * m, 10 * m, 30 * m]),
        _ => bail!("unknown zoo model {name:?} (resnet18, hrn-5x5x3x:M, hrn-2x5x3x:M)"),
    }
}

fn random_weights(shape: &LinearShape, seed: u64) -> Vec<i64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // He-normal-like magnitudes at fw = 8 fractional bits: |w| ≲ 2^7.
    (0..shape.weight_len())
        .map(|_| (rng.next_u64() % 257) as i64 - 128)
        .collect()
}

/// Entry point of `pi-bench linear` (arguments after the subcommand).
pub fn main(args: &[String]) -> Result<()> {
    let mut model_path = None;
    let mut zoo = None;
    let mut conv = None;
    let mut fc = None;
    let mut threads = None;
    let mut ring_bits = 52u32;
    let mut flood_bits = None;
    let mut pack_bits = None;
    let mut link_mbps = pi_he::DEFAULT_LINK_MBPS;
    let mut check = false;
    let mut reference_costs = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--model" => model_path = Some(val()?),
            "--zoo" => zoo = Some(val()?),
            "--conv" => conv = Some(parse_list(&val()?)?),
            "--fc" => fc = Some(parse_list(&val()?)?),
            "--threads" => threads = Some(val()?.parse::<usize>()?),
            "--ring-bits" => ring_bits = val()?.parse()?,
            "--flood-bits" => flood_bits = Some(val()?.parse::<u32>()?),
            "--pack-bits" => pack_bits = Some(val()?.parse::<u32>()?),
            "--link-mbps" => link_mbps = val()?.parse()?,
            "--check" => check = true,
            "--reference-costs" => reference_costs = true,
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("linear.rs")
                        .lines()
                        .take(10)
                        .map(|l| l.trim_start_matches("//!"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                return Ok(());
            }
            other => bail!("unknown option {other:?} (see --help)"),
        }
    }
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| anyhow!("thread pool: {e}"))?;
    }
    let (label, layers) = if let Some(p) = &model_path {
        let model = models::onnx::load(p).map_err(|e| anyhow!("loading {p}: {e}"))?;
        (model.name.clone(), model_layers(&model, ring_bits)?)
    } else if let Some(z) = &zoo {
        let model = zoo_model(z)?;
        (z.clone(), model_layers(&model, ring_bits)?)
    } else if let Some(v) = &conv {
        let (c_in, c_out, h, w, k, stride) = match v.as_slice() {
            [a, b, c, d, e, f] | [a, b, c, d, e, f, _] => (*a, *b, *c, *d, *e, *f),
            _ => bail!("--conv C_IN,C_OUT,H,W,K,STRIDE[,GROUPS]"),
        };
        let groups = v.get(6).copied().unwrap_or(1);
        let shape = LinearShape::Conv {
            c_in,
            h,
            w,
            c_out,
            kh: k,
            kw: k,
            stride,
            pad: k / 2,
            groups,
        };
        let weights = random_weights(&shape, 1);
        (
            "conv".to_string(),
            vec![Layer {
                name: format!("conv{c_in}x{c_out}@{h}x{w}k{k}s{stride}g{groups}"),
                shape,
                weights,
            }],
        )
    } else if let Some(v) = &fc {
        let [i, o] = v.as_slice() else {
            bail!("--fc IN,OUT")
        };
        let shape = LinearShape::Fc {
            in_features: *i,
            out_features: *o,
        };
        let weights = random_weights(&shape, 1);
        (
            "fc".to_string(),
            vec![Layer {
                name: format!("fc{i}x{o}"),
                shape,
                weights,
            }],
        )
    } else {
        bail!("one of --model, --zoo, --conv, --fc is required (see --help)");
    };

    let flood = flood_bits.unwrap_or(pi_he::DEFAULT_FLOOD_BITS);
    let params = match pack_bits {
        Some(l) => HeParams::for_ring_packed(ring_bits, flood, pi_he::DEFAULT_WEIGHT_L1_BITS, l)?,
        None => HeParams::for_ring_with(ring_bits, flood, pi_he::DEFAULT_WEIGHT_L1_BITS)?,
    }
    .with_link_mbps(link_mbps)?;
    let ops = if reference_costs {
        pi_he::HeOpCosts::default()
    } else {
        pi_he::measure_op_costs(&params)?
    };
    let params = params.with_op_costs(ops)?;
    let host = protocol::cost::HostModel::default();
    let threads = rayon::current_num_threads();
    let t_prep = Instant::now();
    let prepared: Vec<PreparedLayer> = layers
        .iter()
        .map(|l| prepare_layer(&params, &l.shape, &l.weights).with_context(|| l.name.clone()))
        .collect::<Result<_>>()?;
    let prepare_seconds = t_prep.elapsed().as_secs_f64();

    let mut rng = ChaCha20Rng::from_entropy();
    let client = ClientHe::new(&params, &mut rng)?;
    let inputs: Vec<Vec<u64>> = layers
        .iter()
        .map(|l| {
            (0..l.shape.input_len())
                .map(|_| rng.next_u64() & ((1u64 << ring_bits) - 1))
                .collect()
        })
        .collect();
    let (mut sch, mut cch) = pi_net::loopback_pair()?;
    let t_all = Instant::now();
    let result = std::thread::scope(|s| -> Result<_> {
        let params = &params;
        let prepared = &prepared;
        let server = s.spawn(move || -> Result<Vec<Vec<u64>>> {
            let mut rng = ChaCha20Rng::from_entropy();
            let setup = sch.recv_frame()?;
            let he = ServerHe::new(params, &setup)?;
            prepared
                .iter()
                .map(|l| Ok(server_linear(&mut sch, &he, l, &mut rng)?))
                .collect()
        });
        cch.send_frame(&client.public_setup())?;
        let setup_bytes = cch.counters().sent;
        let mut rows = Vec::new();
        let mut shares = Vec::new();
        for (l, x) in layers.iter().zip(&inputs) {
            let before = cch.counters();
            let cpu0 = protocol::cost::process_cpu_seconds();
            let t = Instant::now();
            let c = client_linear(&mut cch, &client, &l.shape, x)?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu0
                .zip(protocol::cost::process_cpu_seconds())
                .map(|(a, b)| b - a);
            let p = &prepared[rows.len()];
            let plan = pi_he::plan_cost(params, &l.shape)?;
            let uncached = p.kernels() - p.cached_kernels();
            let wire = (plan.bytes_up + plan.bytes_down) as f64 * host.wire_ns_per_byte;
            let est = (plan.wall_ns(&ops, uncached, threads) + wire) * 1e-9;
            let est_cpu = (plan.cpu_ns(&ops, uncached) + wire) * 1e-9;
            let d = cch.counters().since(before);
            let (cin, cout) = prepared[rows.len()].ciphertexts();
            let (_, _, pack) = pi_he::plan_summary(params, &l.shape)?;
            rows.push(json!({
                "name": l.name, "shape": format!("{:?}", l.shape), "macs": l.shape.macs(), "seconds": secs,
                "bytes": d.total(), "bytes_client_to_server": d.sent, "bytes_server_to_client": d.received,
                "cts_in": cin, "cts_out": cout, "pack": pack,
                "cpu_seconds": cpu, "est_seconds": est, "est_cpu_seconds": est_cpu,
                "products": plan.products, "key_switches": plan.key_switches, "units": plan.units,
                "uncached_kernels": uncached,
            }));
            shares.push(c);
        }
        let server_shares = server
            .join()
            .map_err(|_| anyhow!("server thread panicked"))??;
        Ok((rows, shares, server_shares, setup_bytes))
    })?;
    let he_seconds = t_all.elapsed().as_secs_f64();
    let (rows, client_shares, server_shares, setup_bytes) = result;
    let correct = if check {
        let mask = (1u64 << ring_bits) - 1;
        Some(layers.iter().enumerate().all(|(i, l)| {
            let want = pi_he::plain_layer(&l.shape, &l.weights, &inputs[i], ring_bits);
            want.iter()
                .enumerate()
                .all(|(j, &v)| client_shares[i][j].wrapping_add(server_shares[i][j]) & mask == v)
        }))
    } else {
        None
    };
    let c = cch.counters();
    let out = json!({
        "bench": "linear", "model": label, "ring_bits": ring_bits, "poly_degree": params.poly_degree(),
        "log_q": params.log_q(), "primes": params.primes(), "flood_bits": params.flood_bits(), "reply_bits": params.reply_bits(),
        "threads": rayon::current_num_threads(), "prepare_seconds": prepare_seconds,
        "he_seconds": he_seconds, "bytes_client_to_server": c.sent, "bytes_server_to_client": c.received,
        "setup_bytes": setup_bytes, "macs": layers.iter().map(|l| l.shape.macs()).sum::<u64>(),
        "layer_bytes": rows.iter().map(|r| r["bytes"].as_u64().unwrap_or(0)).sum::<u64>(),
        "pack_bits": params.pack_bits(), "link_mbps": params.link_mbps(), "kernels": pi_he::kernel_path(),
        "op_costs": ops,
        "cpu": protocol::cpu_model().unwrap_or_else(|| "unknown".into()),
        "correct": correct, "layers": rows,
    });
    println!("{out}");
    if correct == Some(false) {
        bail!("shares do not add up to the plaintext layer");
    }
    Ok(())
}
