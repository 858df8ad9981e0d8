//! `pi-opt check`: lists every reason a model cannot be served privately, at once, with what to
//! change in the PyTorch model.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::{load_model, stored_config};

/// Arguments of `pi-opt check`.
#[derive(Args)]
pub struct CheckArgs {
    /// ONNX model file.
    pub model: PathBuf,
    /// The graph output to serve (default: the first).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// Print JSON: {"model", "ok", "problems": [{"node", "problem"}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Problem {
    node: String,
    problem: String,
}

/// The node an error names, if any.
fn node_of(e: &models::ModelError) -> String {
    use models::ModelError as E;
    match e {
        E::InvalidNode { node, .. }
        | E::ShapeMismatch { node, .. }
        | E::UnsupportedOp { node, .. }
        | E::UnsupportedAttribute { node, .. }
        | E::Onnx { node, .. }
        | E::Unsupported { node, .. } => node.clone(),
        _ => String::new(),
    }
}

/// Runs `pi-opt check`; fails (exit code 1) when the model has problems.
pub fn run(a: CheckArgs) -> Result<()> {
    let mut problems: Vec<models::ModelError> =
        models::onnx::check_file(&a.model, a.output.as_deref())?;
    let mut config_note = String::new();
    if problems.is_empty() {
        // The nodes import: the fixed-point plan must accept them too.
        let imported = load_model(&a.model, a.output.as_deref())?;
        let (config, stored) = stored_config(&imported)?;
        config_note = if stored {
            format!("calibrated format {}", config.to_metadata())
        } else {
            format!(
                "default format {} (not calibrated: run pi-opt calibrate)",
                config.to_metadata()
            )
        };
        if let Err(e) = models::fixed::plan(&imported.model, &config) {
            problems.push(e);
        }
    }
    let list: Vec<Problem> = problems
        .iter()
        .map(|e| Problem {
            node: node_of(e),
            problem: e.to_string(),
        })
        .collect();
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            model: String,
            ok: bool,
            problems: &'a [Problem],
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                model: a.model.display().to_string(),
                ok: list.is_empty(),
                problems: &list,
            })?
        );
    } else if list.is_empty() {
        println!("{}: OK ({config_note})", a.model.display());
    } else {
        println!("{}: {} problem(s)", a.model.display(), list.len());
        // Unsupported operators repeat per block: one line per kind, with the count and the nodes.
        let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
        for e in &problems {
            match e {
                models::ModelError::UnsupportedOp { op, node, hint } => {
                    match groups.iter_mut().find(|(o, h, _)| o == op && h == hint) {
                        Some(g) => g.2.push(node.clone()),
                        None => groups.push((op.clone(), hint.clone(), vec![node.clone()])),
                    }
                }
                other => groups.push((String::new(), other.to_string(), vec![])),
            }
        }
        for (op, hint, nodes) in &groups {
            if op.is_empty() {
                println!("  - {hint}");
                continue;
            }
            let shown: Vec<&str> = nodes.iter().take(3).map(String::as_str).collect();
            let more = if nodes.len() > 3 {
                format!(", … ({} nodes)", nodes.len())
            } else {
                String::new()
            };
            println!(
                "  - unsupported `{op}` at `{}`{more}: {hint}",
                shown.join("`, `")
            );
        }
    }
    if !list.is_empty() {
        bail!("{} cannot be served privately as it is", a.model.display());
    }
    Ok(())
}
