//! TLS and plaintext connections between two threads over loopback, with a throwaway CA.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::devcert::DevPki;
use crate::{
    accept, connect, ClientSecurity, ClientTls, ConnectOptions, Deadlines, NetError,
    ServerSecurity, ServerTls,
};

fn server_tls(pki: &DevPki, client_ca: bool) -> ServerSecurity {
    let ca = client_ca.then_some(pki.ca_cert.as_bytes());
    ServerSecurity::Tls(
        ServerTls::from_pem(
            pki.server_cert.as_bytes(),
            pki.server_key.as_bytes(),
            ca,
            "test",
        )
        .expect("server tls"),
    )
}

fn client_opts(ca: &str, identity: Option<(&str, &str)>, name: Option<&str>) -> ConnectOptions {
    let tls = ClientTls::from_pem(
        ca.as_bytes(),
        identity.map(|(c, k)| (c.as_bytes(), k.as_bytes())),
        "test",
    )
    .expect("client tls");
    ConnectOptions {
        security: ClientSecurity::Tls {
            tls,
            server_name: name.map(str::to_string),
        },
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
    }
}

/// A server thread that accepts one connection, echoes one frame doubled, and returns its result.
fn echo_server(security: ServerSecurity) -> (String, thread::JoinHandle<Result<(), NetError>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = thread::spawn(move || {
        let (sock, _) = l.accept().expect("accept");
        let mut ch = accept(
            sock,
            &security,
            Deadlines::new(Duration::from_secs(5)),
            Duration::from_secs(5),
        )?;
        let f = ch.recv_frame()?;
        let mut twice = f.clone();
        twice.extend_from_slice(&f);
        ch.send_frame(&twice)?;
        ch.flush()?;
        ch.close(Duration::from_millis(200));
        Ok(())
    });
    (addr, h)
}

#[test]
fn a_certificate_from_the_trusted_ca_works_both_ways() {
    let pki = DevPki::generate(&["localhost", "127.0.0.1"]).expect("pki");
    let (addr, server) = echo_server(server_tls(&pki, false));
    let mut ch = connect(&addr, &client_opts(&pki.ca_cert, None, None)).expect("connect");
    ch.send_frame(&[5u8; 100_000]).expect("send");
    ch.flush().expect("flush");
    let back = ch.recv_frame().expect("recv");
    assert_eq!(back, vec![5u8; 200_000]);
    server.join().expect("server thread").expect("server");
}

#[test]
fn a_server_signed_by_another_ca_is_refused() {
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let other = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let (addr, server) = echo_server(server_tls(&pki, false));
    let err = connect(&addr, &client_opts(&other.ca_cert, None, None))
        .err()
        .expect("refused");
    assert!(matches!(err, NetError::Tls(_)), "{err}");
    assert!(err.to_string().contains("not signed by a CA"), "{err}");
    assert!(server.join().expect("server thread").is_err());
}

#[test]
fn a_name_the_certificate_does_not_cover_is_refused() {
    let pki = DevPki::generate(&["localhost"]).expect("pki");
    let (addr, server) = echo_server(server_tls(&pki, false));
    let err = connect(&addr, &client_opts(&pki.ca_cert, None, Some("example.org")))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--tls-server-name"), "{err}");
    assert!(server.join().expect("server thread").is_err());
}

#[test]
fn a_plaintext_client_against_a_tls_server_is_told_so() {
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let (addr, server) = echo_server(server_tls(&pki, false));
    let mut ch =
        connect(&addr, &ConnectOptions::plaintext(Duration::from_secs(5))).expect("tcp connect");
    ch.send_frame(b"hello").expect("send");
    ch.flush().expect("flush");
    let err = ch.recv_frame().expect_err("refused");
    assert!(matches!(err, NetError::PeerSpeaksTls), "{err}");
    assert!(err.to_string().contains("--tls-ca"), "{err}");
    assert!(server.join().expect("server thread").is_err());
}

#[test]
fn a_tls_client_against_a_plaintext_server_is_told_so() {
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let (addr, server) = echo_server(ServerSecurity::Plaintext);
    let err = connect(&addr, &client_opts(&pki.ca_cert, None, None))
        .err()
        .expect("refused");
    assert!(matches!(err, NetError::Tls(_)), "{err}");
    let server_err = server.join().expect("server thread").expect_err("refused");
    assert!(
        matches!(server_err, NetError::PeerSpeaksTls),
        "{server_err}"
    );
}

#[test]
fn client_certificates_are_required_when_the_server_asks() {
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    // Without a client certificate: refused (at the handshake or at the first read).
    let (addr, server) = echo_server(server_tls(&pki, true));
    let refused = connect(&addr, &client_opts(&pki.ca_cert, None, None)).and_then(|mut ch| {
        ch.send_frame(b"x")?;
        ch.flush()?;
        ch.recv_frame()
    });
    let err = refused.expect_err("refused without a certificate");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.join().expect("server thread").is_err());
    // With one from the trusted CA: served.
    let (addr, server) = echo_server(server_tls(&pki, true));
    let opts = client_opts(
        &pki.ca_cert,
        Some((&pki.client_cert, &pki.client_key)),
        None,
    );
    let mut ch = connect(&addr, &opts).expect("connect");
    ch.send_frame(b"ok").expect("send");
    ch.flush().expect("flush");
    assert_eq!(ch.recv_frame().expect("recv"), b"okok");
    server.join().expect("server thread").expect("server");
}

/// Forwards a TCP connection, flipping one bit at byte `flip_at` of the client → server stream.
fn flipping_proxy(upstream: String, flip_at: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let (down, _) = l.accept().expect("accept");
        let up = TcpStream::connect(upstream).expect("upstream");
        let (mut d2, mut u2) = (
            down.try_clone().expect("clone"),
            up.try_clone().expect("clone"),
        );
        let back = thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut d2);
        });
        let (mut down, mut up) = (down, up);
        let mut seen = 0usize;
        let mut buf = [0u8; 4096];
        while let Ok(n) = down.read(&mut buf) {
            if n == 0 {
                break;
            }
            if (seen..seen + n).contains(&flip_at) {
                buf[flip_at - seen] ^= 0x04;
            }
            seen += n;
            if up.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = up.shutdown(std::net::Shutdown::Write);
        let _ = back.join();
    });
    addr
}

#[test]
fn a_flipped_byte_inside_tls_is_an_integrity_error_not_data() {
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let (addr, server) = echo_server(server_tls(&pki, false));
    // The handshake is well under 5,000 bytes; the frame is 100,000.
    let proxy = flipping_proxy(addr, 20_000);
    let mut ch =
        connect(&proxy, &client_opts(&pki.ca_cert, None, Some("127.0.0.1"))).expect("connect");
    // The server may see the damage and close before the whole frame is written: a failed
    // send is fine here, what matters is what the server made of the bytes.
    let _ = ch.send_frame(&[9u8; 100_000]).and_then(|()| ch.flush());
    let server_err = server.join().expect("server thread").expect_err("detected");
    assert!(server_err.to_string().contains("altered"), "{server_err}");
    assert!(ch.recv_frame().is_err());
}

#[test]
fn a_flipped_byte_in_plaintext_is_caught_by_the_frame_check() {
    let (addr, server) = echo_server(ServerSecurity::Plaintext);
    let proxy = flipping_proxy(addr, 5_000);
    let mut ch =
        connect(&proxy, &ConnectOptions::plaintext(Duration::from_secs(5))).expect("connect");
    // The server may see the damage and close before the whole frame is written: a failed
    // send is fine here, what matters is what the server made of the bytes.
    let _ = ch.send_frame(&[9u8; 100_000]).and_then(|()| ch.flush());
    let server_err = server.join().expect("server thread").expect_err("detected");
    assert!(matches!(server_err, NetError::Corrupt(_)), "{server_err}");
}
