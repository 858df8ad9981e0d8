//! `pi-opt optimize`: Algorithm 2's ReLU-optimized networks of one network.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use optimizer::algorithm2;
use optimizer::equalize;
use optimizer::report::{self, NetworkReport};

use super::net::{net_arch, NetArgs};
use super::{print_json, CostArgs};

/// Arguments of `pi-opt optimize`.
#[derive(Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Criticality order, most → least critical.
    #[arg(long, default_value = "S3,S2,S4,S1")]
    order: String,
    #[command(flatten)]
    cost: CostArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pi-opt optimize`.
pub fn run(a: OptimizeArgs) -> Result<()> {
    let arch = net_arch(&a.net)?;
    let order = equalize::parse_order(&a.order, arch.stages.len())?;
    let cost = a.cost.pricing()?;
    let culls = algorithm2::least_critical_dominates(&arch, &order)?;
    let nets = algorithm2::optimize(&arch, &order)?;
    let reports: Vec<(String, NetworkReport)> = nets
        .iter()
        .map(|c| {
            Ok((
                c.label.clone(),
                NetworkReport::with_pricing(&c.arch, &cost)?,
            ))
        })
        .collect::<Result<_>>()?;
    if a.json {
        #[derive(Serialize)]
        struct Item {
            /// Algorithm 2's name for it: Net, Net_T, Net_C, Net_R4, Net_R8, Net_R16.
            net: String,
            #[serde(flatten)]
            network: NetworkReport,
        }
        #[derive(Serialize)]
        struct Out {
            input: NetworkReport,
            least_critical_dominates: bool,
            networks: Vec<Item>,
        }
        return print_json(&Out {
            input: NetworkReport::with_pricing(&arch, &cost)?,
            least_critical_dominates: culls,
            networks: reports
                .into_iter()
                .map(|(net, network)| Item { net, network })
                .collect(),
        });
    }
    let least = order[order.len() - 1];
    println!("ReLU optimization (Algorithm 2) of {}", arch.label());
    println!(
        "  least-critical stage S{} {} (ReLUs without stem vs more-critical stages) → {}",
        least + 1,
        if culls {
            "dominates"
        } else {
            "does not dominate"
        },
        if culls { "culled" } else { "kept" }
    );
    println!("  {}\n", report::cost_line(&cost));
    let labelled: Vec<NetworkReport> = reports
        .iter()
        .map(|(l, r)| {
            let mut r = r.clone();
            r.label = format!("{l:<8} {}", r.label);
            r
        })
        .collect();
    print!("{}", report::network_table(&labelled));
    println!();
    for (l, r) in &reports {
        println!("{l:<8} {}", r.build_command);
    }
    Ok(())
}
