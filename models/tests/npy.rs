//! `.npy` image loading: round trip, numpy-compatible bytes, strict rejection.

use models::npy::{load_image, read_f32, read_image, to_bytes, write_f32};
use models::ModelError;

fn header(dict: &str) -> Vec<u8> {
    let mut h = dict.to_string();
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat((64 - total % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out
}

fn with_data(mut h: Vec<u8>, n: usize) -> Vec<u8> {
    (0..n).for_each(|i| h.extend_from_slice(&(i as f32 * 0.5).to_le_bytes()));
    h
}

#[test]
fn round_trip_both_layouts() {
    let data: Vec<f32> = (0..12).map(|i| i as f32 - 3.25).collect();
    let dir = std::env::temp_dir();
    for shape in [vec![3, 2, 2], vec![1, 3, 2, 2]] {
        let path = dir.join(format!(
            "models-npy-{}-{}.npy",
            std::process::id(),
            shape.len()
        ));
        write_f32(&path, &shape, &data).unwrap();
        let (dims, back) = load_image(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(dims, [3, 2, 2]);
        assert_eq!(back, data);
    }
    // Header layout matches numpy's (64-byte aligned, version 1.0).
    let bytes = to_bytes(&[1, 3, 2, 2], &data).unwrap();
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0);
    assert!(std::str::from_utf8(&bytes[10..10 + hl])
        .unwrap()
        .starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 2, 2), }"));
    // Extra spacing / double quotes / no trailing comma are fine.
    let b = with_data(
        header("{\"descr\":'<f4','shape':(3,1,1),'fortran_order':False}"),
        3,
    );
    assert_eq!(read_image(&b).unwrap().0, [3, 1, 1]);
    let (s, v) = read_f32(&with_data(
        header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"),
        2,
    ))
    .unwrap();
    assert_eq!((s, v), (vec![2], vec![0.0, 0.5]));
}

fn npy_error(bytes: &[u8]) -> String {
    match read_image(bytes) {
        Err(ModelError::Npy(msg)) => msg,
        other => panic!("expected an npy error, got {other:?}"),
    }
}

#[test]
fn malformed_files_are_rejected() {
    let ok = |shape: &str| {
        header(&format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
        ))
    };
    assert!(npy_error(&with_data(
        header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2, 2), }"),
        24
    ))
    .contains("dtype"));
    assert!(npy_error(&with_data(
        header("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2, 2), }"),
        12
    ))
    .contains("dtype"));
    assert!(npy_error(&with_data(
        header("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2, 2), }"),
        12
    ))
    .contains("Fortran"));
    assert!(npy_error(&with_data(ok("(12,)"), 12)).contains("expected [C, H, W]"));
    assert!(npy_error(&with_data(ok("(2, 3, 2, 2)"), 24)).contains("batch of 2"));
    assert!(npy_error(&with_data(ok("(3, 0, 2)"), 0)).contains("empty"));
    assert!(npy_error(&with_data(ok("(3, 2, 2)"), 11)).contains("truncated"));
    assert!(npy_error(&with_data(ok("(3, 2, 2)"), 13)).contains("trailing"));
    assert!(npy_error(&with_data(ok("(3, 2, 2"), 12)).contains("malformed"));
    assert!(npy_error(&with_data(
        header("{'descr': '<f4', 'shape': (3, 2, 2), }"),
        12
    ))
    .contains("lacks"));
    assert!(npy_error(&with_data(
        header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), 'x': 1}"),
        12
    ))
    .contains("unexpected"));
    assert!(npy_error(b"PK\x03\x04 not numpy at all").contains("magic"));
    let full = with_data(ok("(3, 2, 2)"), 12);
    for cut in [0, 5, 9, 20, 63, 64, 70] {
        assert!(read_image(&full[..cut]).is_err(), "cut at {cut} accepted");
    }
    let missing = std::env::temp_dir().join("models-npy-does-not-exist.npy");
    assert!(matches!(load_image(&missing), Err(ModelError::Io { .. })));
}
