//! Banked garbled ReLUs: client chunks serialised to bytes and read back, the server rebuilt from
//! its 32-byte secrets and a decoding key, outputs equal to the reference; damaged stores refused.

use std::io::Cursor;
use std::thread;

use pi_gc::{
    evaluate_offline_into, garble_offline_with, recv_decode_offsets, relu_reference, ChunkSink,
    ChunkSource, CircuitSpec, ClientOffline, ClientRelus, GcError, OfflineConfig, ReluParams,
    RelusSecrets, ServerRelus, SpillChunks, SpillPolicy, StoredChunk,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Serialises every chunk into one byte string (as a file on disk would hold them).
#[derive(Default)]
struct Bytes(Vec<u8>);

impl ChunkSink for Bytes {
    fn put(&mut self, chunk: StoredChunk) -> Result<(), GcError> {
        chunk
            .write_to(&mut self.0)
            .map_err(|e| GcError::Storage(e.to_string()))
    }
}

struct Reader(Cursor<Vec<u8>>);

impl ChunkSource for Reader {
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError> {
        StoredChunk::read_from(&mut self.0)
    }
}

struct Banked {
    params: Vec<ReluParams>,
    specs: Vec<CircuitSpec>,
    inputs: Vec<(u64, u64)>,
    a: Vec<u64>,
    stored: Vec<u8>,
    offsets: Vec<u64>,
    secrets: [u8; 32],
    decoding_key: [u8; 32],
    offline: ClientOffline,
}

/// Offline with a small chunk size, chunks serialised, decoding re-keyed; nothing kept in memory
/// on the server side but 32 + 32 bytes.
fn bank(n: usize, seed: u64) -> Banked {
    let mut params = vec![ReluParams::DEFAULT; n];
    // A parameter change mid-list exercises per-circuit widths in the offsets.
    for p in params.iter_mut().skip(n / 3).take(n / 5) {
        *p = ReluParams {
            in_bits: 20,
            shift: 4,
            out_bits: 40,
        };
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let a: Vec<u64> = params
        .iter()
        .map(|p| rng.next_u64() & mask(p.in_bits))
        .collect();
    let inputs: Vec<(u64, u64)> = params
        .iter()
        .map(|p| {
            (
                rng.next_u64() & mask(p.in_bits),
                rng.next_u64() & mask(p.out_bits),
            )
        })
        .collect();
    let specs: Vec<CircuitSpec> = params.iter().map(|&p| p.into()).collect();
    let words: Vec<u64> = inputs.iter().flat_map(|&(b, n)| [b, n]).collect();
    let decoding_key = [9u8; 32];
    let cfg = OfflineConfig {
        ot_k: 4,
        chunk_circuits: 700,
    };
    let (mut s, mut c) = pi_net::loopback_pair().unwrap();
    let (secrets, (stored, offsets, offline)) = thread::scope(|sc| {
        let ps = specs.clone();
        let srv = sc.spawn(move || {
            let mut relus =
                garble_offline_with(&mut s, &ps, &cfg, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
            relus.rekey_decoding(&mut s, &decoding_key).unwrap();
            *relus.secrets().to_bytes()
        });
        let mut sink = Bytes::default();
        let offline = evaluate_offline_into(
            &mut c,
            &specs,
            &words,
            &mut ChaCha20Rng::seed_from_u64(2),
            &mut sink,
        )
        .unwrap();
        let offsets = recv_decode_offsets(&mut c, &specs).unwrap();
        (srv.join().unwrap(), (sink.0, offsets, offline))
    });
    Banked {
        params,
        specs,
        inputs,
        a,
        stored,
        offsets,
        secrets,
        decoding_key,
        offline,
    }
}

/// Online from the stored bytes against a restored server, in the given call sizes.
fn online(b: &Banked, stored: Vec<u8>, sizes: &[usize]) -> Result<Vec<u64>, GcError> {
    let secrets = RelusSecrets::from_bytes(&b.secrets)?;
    let mut srv = ServerRelus::restore(&b.specs, &secrets, &b.decoding_key);
    let mut cli =
        ClientRelus::from_source(&b.specs, Box::new(Reader(Cursor::new(stored))), &b.offline);
    cli.set_decode_offsets(b.offsets.clone())?;
    let mut outs = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let a = &b.a[at..at + n];
        let (out, r) = run_online(&mut srv, &mut cli, a);
        match (out, r) {
            (Ok(o), Ok(())) => outs.extend(o),
            (_, Err(e)) => return Err(e),
            (Err(e), _) => return Err(e),
        }
        at += n;
    }
    Ok(outs)
}

/// One online call on both sides over a fresh connection; a side that fails closes its end.
fn run_online(
    srv: &mut ServerRelus,
    cli: &mut ClientRelus,
    a: &[u64],
) -> (Result<Vec<u64>, GcError>, Result<(), GcError>) {
    let (s, c) = pi_net::loopback_pair().unwrap();
    thread::scope(|sc| {
        let h = sc.spawn(move || {
            let mut s = s;
            srv.online(&mut s, a)
        });
        let r = {
            let mut c = c;
            cli.online(&mut c, a.len())
        };
        (h.join().unwrap(), r)
    })
}

fn reference(b: &Banked) -> Vec<u64> {
    (0..b.params.len())
        .map(|i| relu_reference(&b.params[i], b.a[i], b.inputs[i].0, b.inputs[i].1))
        .collect()
}

#[test]
fn banked_relus_from_stored_bytes_and_a_restored_server_match_the_reference() {
    let b = bank(3000, 5);
    let out = online(&b, b.stored.clone(), &[1, 699, 1300, 1000]).unwrap();
    assert_eq!(out, reference(&b));
    // The server's state is 32 bytes of secrets plus the 32-byte decoding key.
    assert_eq!(RelusSecrets::LEN, 32);
}

#[test]
fn decoding_offsets_are_needed_and_hide_the_decoding_bits() {
    let b = bank(800, 6);
    // Without the offsets the server decodes garbage.
    let secrets = RelusSecrets::from_bytes(&b.secrets).unwrap();
    let mut srv = ServerRelus::restore(&b.specs, &secrets, &b.decoding_key);
    let mut cli = ClientRelus::from_source(
        &b.specs,
        Box::new(Reader(Cursor::new(b.stored.clone()))),
        &b.offline,
    );
    let (out, r) = run_online(&mut srv, &mut cli, &b.a);
    r.unwrap();
    let want = reference(&b);
    let right = out
        .unwrap()
        .iter()
        .zip(&want)
        .filter(|(x, y)| x == y)
        .count();
    assert!(right < 5, "{right} of 800 decoded right without offsets");
    // Offsets look uniform: about half of their bits are set.
    let ones: u32 = b.offsets.iter().map(|o| o.count_ones()).sum();
    let bits: u32 = b.params.iter().map(|p| p.out_bits).sum();
    assert!((ones as f64 / bits as f64 - 0.5).abs() < 0.02);
}

#[test]
fn damaged_or_truncated_stores_are_refused() {
    let b = bank(1500, 7);
    let n = b.stored.len();
    // A flipped byte inside the first chunk's tables (record header is 36 bytes, frame header 17).
    let mut tables = b.stored.clone();
    tables[36 + 17 + 100] ^= 1;
    assert!(matches!(
        online(&b, tables, &[1500]),
        Err(GcError::Integrity { .. })
    ));
    // A flipped byte among the last chunk's labels (just before its 16-byte checksum).
    let mut labels = b.stored.clone();
    labels[n - 40] ^= 1;
    assert!(matches!(
        online(&b, labels, &[1500]),
        Err(GcError::Integrity {
            what: "stored chunk",
            ..
        })
    ));
    // Truncation: mid-record, and a whole chunk missing.
    let cut = b.stored[..n - 1000].to_vec();
    assert!(matches!(online(&b, cut, &[1500]), Err(GcError::Storage(_))));
    let mut first_two = Vec::new();
    let mut r = Cursor::new(b.stored.clone());
    for _ in 0..2 {
        StoredChunk::read_from(&mut r)
            .unwrap()
            .unwrap()
            .write_to(&mut first_two)
            .unwrap();
    }
    let e = online(&b, first_two.clone(), &[1500]).unwrap_err();
    assert!(
        matches!(&e, GcError::Storage(m) if m.contains("ends at circuit 1400")),
        "{e}"
    );
    // The circuits that were present are usable: a shorter online run succeeds.
    assert_eq!(
        online(&b, first_two, &[1400]).unwrap(),
        reference(&b)[..1400].to_vec()
    );
    // Not a record at all.
    assert!(matches!(
        online(&b, b"garbage garbage garbage".to_vec(), &[10]),
        Err(GcError::Storage(_))
    ));
}

#[test]
fn secrets_round_trip_and_a_bad_delta_is_refused() {
    let s = RelusSecrets {
        delta: 0x1234_5678_9abc_def1,
        prf_key: [3u8; 16],
    };
    let b = s.to_bytes();
    let back = RelusSecrets::from_bytes(&b).unwrap();
    assert_eq!((back.delta, back.prf_key), (s.delta, s.prf_key));
    let mut even = *b;
    even[0] &= !1;
    assert!(RelusSecrets::from_bytes(&even).is_err());
}

/// Every chunk of a store, parsed.
fn chunks(stored: &[u8]) -> Vec<StoredChunk> {
    let mut r = Cursor::new(stored.to_vec());
    let mut v = Vec::new();
    while let Some(c) = StoredChunk::read_from(&mut r).unwrap() {
        v.push(c);
    }
    v
}

/// The chunks `source` gives back, serialised as a store.
fn drain(mut source: Box<dyn ChunkSource>) -> Vec<u8> {
    let mut out = Bytes::default();
    while let Some(c) = source.next_chunk().unwrap() {
        out.put(c).unwrap();
    }
    out.0
}

#[test]
fn chunks_beyond_the_memory_budget_come_back_from_the_spill_file_bit_identical() {
    let b = bank(3000, 8);
    let all = chunks(&b.stored);
    assert!(all.len() >= 4, "{} chunks", all.len());
    let first = all[0].stored_len();
    // Nothing, one chunk, and everything in memory.
    for (budget, in_memory) in [(0, 0), (first, 1), (u64::MAX, all.len())] {
        let mut sink = SpillChunks::new(SpillPolicy {
            memory_bytes: budget,
            dir: None,
        });
        for c in chunks(&b.stored) {
            sink.put(c).unwrap();
        }
        let held: u64 = all[..in_memory].iter().map(|c| c.stored_len()).sum();
        let total: u64 = all.iter().map(|c| c.stored_len()).sum();
        assert_eq!(sink.memory_bytes(), held, "budget {budget}");
        assert_eq!(sink.spilled_bytes(), total - held, "budget {budget}");
        assert_eq!(
            drain(sink.into_source().unwrap()),
            b.stored,
            "budget {budget}"
        );
    }
    // The online phase from a source that is mostly file: the reference outputs.
    let mut sink = SpillChunks::new(SpillPolicy {
        memory_bytes: first,
        dir: None,
    });
    for c in all {
        sink.put(c).unwrap();
    }
    let secrets = RelusSecrets::from_bytes(&b.secrets).unwrap();
    let mut srv = ServerRelus::restore(&b.specs, &secrets, &b.decoding_key);
    let mut cli = ClientRelus::from_source(&b.specs, sink.into_source().unwrap(), &b.offline);
    cli.set_decode_offsets(b.offsets.clone()).unwrap();
    let (out, r) = run_online(&mut srv, &mut cli, &b.a);
    r.unwrap();
    assert_eq!(out.unwrap(), reference(&b));
}

#[test]
fn a_spill_directory_that_cannot_hold_the_file_is_a_storage_error() {
    let b = bank(800, 9);
    let missing = std::env::temp_dir().join(format!("pi-gc-no-such-dir-{}", std::process::id()));
    let mut sink = SpillChunks::new(SpillPolicy {
        memory_bytes: 0,
        dir: Some(missing.join("spill")),
    });
    let c = chunks(&b.stored).remove(0);
    match sink.put(c) {
        Err(GcError::Storage(m)) => assert!(m.contains("temporary file"), "{m}"),
        other => panic!("expected a storage error, got {:?}", other.err()),
    }
}
