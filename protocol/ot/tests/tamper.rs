//! Damaged or mismatched OT ReLU traffic is a typed error on the side that reads it, never a
//! panic or a wrong result: a flipped byte in any frame of `pi-ot` (tag, index, count, length,
//! payload or digest), a cut stream, a different parameter list. (The base-OT and SoftSpoken setup
//! messages belong to `pi-gc` and carry no digest, as in the garbled protocol.)

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use pi_gc::ReluParams;
use pi_net::{Channel, NetError};
use pi_ot::{client_offline, server_offline, OtError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A reader that flips one byte or ends the stream at a given offset, and records what it passes.
struct Tap {
    inner: TcpStream,
    pos: u64,
    flip_at: Option<u64>,
    cut_at: Option<u64>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = buf.len();
        if let Some(c) = self.cut_at {
            if self.pos >= c {
                return Ok(0);
            }
            want = want.min((c - self.pos) as usize);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if let Some(f) = self.flip_at {
            if f >= self.pos && f < self.pos + n as u64 {
                buf[(f - self.pos) as usize] ^= 0x10;
            }
        }
        self.pos += n as u64;
        if let Ok(mut v) = self.seen.lock() {
            v.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

type Ch = Channel<Tap, TcpStream>;

/// Which direction is tapped.
#[derive(Clone, Copy)]
enum Dir {
    /// Server → client (the client's reader).
    ToClient,
    /// Client → server (the server's reader).
    ToServer,
}

/// What a tapped reader saw.
type Seen = Arc<Mutex<Vec<u8>>>;

/// Loopback pair with one reader tapped; also returns what each side read.
fn pair(
    dir: Dir,
    flip_at: Option<u64>,
    cut_at: Option<u64>,
) -> (Ch, Ch, [TcpStream; 2], [Seen; 2]) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || TcpStream::connect(addr).unwrap());
    let (s, _) = l.accept().unwrap();
    let c = t.join().unwrap();
    for sock in [&s, &c] {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let kill = [s.try_clone().unwrap(), c.try_clone().unwrap()];
    let seen = [
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    ];
    let tap = |st: TcpStream, flip_at, cut_at, seen: &Arc<Mutex<Vec<u8>>>| Tap {
        inner: st.try_clone().unwrap(),
        pos: 0,
        flip_at,
        cut_at,
        seen: seen.clone(),
    };
    let (fs, cs, fc, cc_) = match dir {
        Dir::ToClient => (None, None, flip_at, cut_at),
        Dir::ToServer => (flip_at, cut_at, None, None),
    };
    let sc = Channel::new(tap(s.try_clone().unwrap(), fs, cs, &seen[0]), s);
    let cc = Channel::new(tap(c.try_clone().unwrap(), fc, cc_, &seen[1]), c);
    (sc, cc, kill, seen)
}

fn inputs(n: usize) -> (Vec<ReluParams>, Vec<u64>, Vec<(u64, u64)>) {
    let p = vec![ReluParams::DEFAULT; n];
    let a = (0..n as u64)
        .map(|i| (i * 0x9e37_79b9) & ((1 << 27) - 1))
        .collect();
    let x = (0..n as u64)
        .map(|i| ((i * 0x7f4a_7c15) & ((1 << 27) - 1), i * 3))
        .collect();
    (p, a, x)
}

type Outcome = (Result<(), OtError>, Result<(), OtError>, [Vec<u8>; 2]);

/// Runs offline then one online call; each side closes its socket when it fails (as a process
/// would), so the other side ends with an error too instead of waiting. Also returns the bytes
/// each side received.
fn run(dir: Dir, flip_at: Option<u64>, cut_at: Option<u64>, n: usize) -> Outcome {
    let (mut s, mut c, kill, seen) = pair(dir, flip_at, cut_at);
    let (p, a, x) = inputs(n);
    thread::scope(|sc| {
        let (p2, kill0) = (p.clone(), kill[0].try_clone().unwrap());
        let h = sc.spawn(move || {
            let r = (|| -> Result<(), OtError> {
                let mut srv = server_offline(&mut s, &p2, &mut ChaCha20Rng::seed_from_u64(1))?;
                srv.online(&mut s, &a)?;
                Ok(())
            })();
            if r.is_err() {
                let _ = kill0.shutdown(std::net::Shutdown::Both);
            }
            r
        });
        let r = (|| -> Result<(), OtError> {
            let mut cli = client_offline(&mut c, &p, &x, &mut ChaCha20Rng::seed_from_u64(2))?;
            cli.online(&mut c, n)?;
            Ok(())
        })();
        if r.is_err() {
            let _ = kill[1].shutdown(std::net::Shutdown::Both);
        }
        let rs = h.join().unwrap();
        let got = |i: usize| seen[i].lock().map(|v| v.clone()).unwrap_or_default();
        (rs, r, [got(0), got(1)])
    })
}

fn typed(e: &OtError) -> bool {
    matches!(
        e,
        OtError::Integrity { .. }
            | OtError::Length { .. }
            | OtError::Desync(_)
            | OtError::UnexpectedMessage { .. }
            | OtError::Bootstrap(_)
            | OtError::Net(_)
    )
}

/// Byte ranges of the frames `pi-ot` itself writes (tags 0x41..), found by walking the
/// length-prefixed stream; the base-OT and SoftSpoken setup messages of `pi-gc` are skipped.
fn ot_frames(stream: &[u8]) -> Vec<(u8, u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 5 <= stream.len() {
        let len = u32::from_le_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let tag = stream[at + 4];
        if tag >= 0x41 {
            out.push((tag, at as u64, (at + 4 + len) as u64));
        }
        at += 4 + len;
    }
    out
}

#[test]
fn a_flipped_byte_in_any_ot_frame_in_either_direction_is_a_typed_error() {
    let (ok_s, ok_c, seen) = run(Dir::ToClient, None, None, 300);
    ok_s.unwrap();
    ok_c.unwrap();
    for (dir, side) in [(Dir::ToClient, 1usize), (Dir::ToServer, 0)] {
        let frames = ot_frames(&seen[side]);
        let tags: std::collections::BTreeSet<u8> = frames.iter().map(|f| f.0).collect();
        // Server → client: hello, trees, reverse OT, products, rounds; client → server:
        // bootstrap correction, rounds.
        assert!(tags.len() >= 2 + 3 * side, "{tags:?}");
        // Flips in the header, payload and digest of each kind of frame (a flipped length prefix
        // makes the reader wait for bytes that never come: only the read timeout ends it).
        let mut done = std::collections::BTreeSet::new();
        for (k, &(tag, lo, hi)) in frames.iter().enumerate() {
            if !done.insert(tag) && k % 7 != 0 {
                continue;
            }
            for at in [lo + 6, lo + (hi - lo) / 2, hi - 1] {
                let (s, c, _) = run(dir, Some(at), None, 300);
                let e = if side == 1 { c } else { s }.expect_err(&format!(
                    "flip at {at} in frame {tag:#x} [{lo}, {hi}) must be detected"
                ));
                assert!(typed(&e), "flip at {at}: {e:?}");
            }
        }
    }
}

#[test]
fn a_cut_stream_is_a_closed_error_not_a_panic() {
    let (_, _, seen) = run(Dir::ToClient, None, None, 300);
    for frac in [0.0, 0.001, 0.2, 0.6, 0.95, 0.999] {
        let at = (seen[1].len() as f64 * frac) as u64;
        let (_, c, _) = run(Dir::ToClient, None, Some(at), 300);
        let e = c.expect_err("cut stream");
        assert!(
            matches!(
                e,
                OtError::Net(NetError::Closed)
                    | OtError::Bootstrap(pi_gc::GcError::Net(NetError::Closed))
            ),
            "cut at {at}: {e:?}"
        );
    }
}

#[test]
fn different_parameter_lists_and_input_counts_are_refused() {
    let (mut s, mut c, _kill, _) = pair(Dir::ToClient, None, None);
    let (p, _, x) = inputs(10);
    let mut q = p.clone();
    q[3] = ReluParams::new(27, 9, 52).unwrap();
    let e = thread::scope(|sc| {
        let h = sc.spawn(move || {
            server_offline(&mut s, &q, &mut ChaCha20Rng::seed_from_u64(1)).map(|_| ())
        });
        let r = client_offline(&mut c, &p, &x, &mut ChaCha20Rng::seed_from_u64(2));
        drop(c);
        let _ = h.join();
        r.map(|_| ()).expect_err("parameter lists differ")
    });
    assert!(matches!(e, OtError::Desync(_)), "{e:?}");
    let (_, mut c, _kill, _) = pair(Dir::ToClient, None, None);
    let (p, _, x) = inputs(10);
    assert!(matches!(
        client_offline(&mut c, &p, &x[..9], &mut ChaCha20Rng::seed_from_u64(2)),
        Err(OtError::InvalidParams(_))
    ));
}
