//! Plugging real private inference into evaluation: a predictor is any closure from a
//! normalised CHW image to logits; [`command_predictor`] builds one that runs an external
//! command (e.g. `pi-client`) per image through a `.npy` file and a JSON report.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Error type a predictor may return (anything convertible, `anyhow::Error` included).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A private-inference predictor: normalised CHW image → logits.
pub type Predictor<'a> = dyn FnMut(&[f32]) -> std::result::Result<Vec<f32>, BoxError> + 'a;

/// Write a float32 `.npy` of shape `[1, c, h, w]` (the `pi-client --input` format).
pub fn write_npy(path: &Path, data: &[f32], shape: [usize; 3]) -> Result<()> {
    Ok(models::npy::write_f32(
        path,
        &[1, shape[0], shape[1], shape[2]],
        data,
    )?)
}

/// Read the `"logits"` array of a `pi-client --report` JSON file.
pub fn read_report_logits(path: &Path) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not JSON: {e}")))?;
    let logits = v
        .get("logits")
        .and_then(|l| l.as_array())
        .ok_or_else(|| Error::format(path, "no \"logits\" array"))?;
    logits
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| Error::format(path, "non-numeric logit"))
        })
        .collect()
}

/// A predictor that, per image, writes `{input}` (.npy), runs `template` through `sh -c` with
/// `{input}` and `{report}` substituted, and reads the logits from `{report}`.
/// Example: `pi-client --connect 127.0.0.1:7000 --tls-ca ca.pem --input {input} --report {report}`.
pub fn command_predictor(
    template: String,
    shape: [usize; 3],
    workdir: PathBuf,
) -> impl FnMut(&[f32]) -> std::result::Result<Vec<f32>, BoxError> {
    let mut k = 0usize;
    move |image: &[f32]| {
        std::fs::create_dir_all(&workdir).map_err(|e| Error::io(&workdir, e))?;
        let input = workdir.join(format!("image{k}.npy"));
        let report = workdir.join(format!("report{k}.json"));
        k += 1;
        write_npy(&input, image, shape)?;
        let cmd = template
            .replace("{input}", &input.to_string_lossy())
            .replace("{report}", &report.to_string_lossy());
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .map_err(|e| Error::Private(format!("cannot run '{cmd}': {e}")))?;
        if !out.status.success() {
            return Err(Error::Private(format!(
                "'{cmd}' failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ))
            .into());
        }
        let logits = read_report_logits(&report)?;
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&report);
        Ok(logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_is_what_pi_client_reads() {
        let p = std::env::temp_dir().join(format!("pi-train-npy-{}.npy", std::process::id()));
        write_npy(&p, &[1.0, -2.5, 3.0, 0.0], [1, 2, 2]).unwrap();
        let (shape, data) = models::npy::load_image(&p).unwrap();
        assert_eq!((shape, data), ([1, 2, 2], vec![1.0, -2.5, 3.0, 0.0]));
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn command_predictor_round_trips_through_a_shell_command() {
        let dir = std::env::temp_dir().join(format!("pi-train-cmd-{}", std::process::id()));
        // a fake client that ignores the image and reports fixed logits
        let mut p = command_predictor(
            "echo '{\"prediction\": 1, \"logits\": [0.5, 2.0]}' > {report}".into(),
            [1, 1, 1],
            dir.clone(),
        );
        assert_eq!(p(&[0.0]).unwrap(), vec![0.5, 2.0]);
        let mut bad = command_predictor("exit 3".into(), [1, 1, 1], dir.clone());
        assert!(bad(&[0.0]).unwrap_err().to_string().contains("exit 3"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
