use std::sync::{Arc, Weak};
use std::time::Duration;

use super::*;

const ME: Ucred = Ucred {
    pid: 7,
    uid: 1000,
    gid: 100,
};

fn send(s: &UnixSocket, data: &[u8]) -> Result<usize, Errno> {
    s.send(data, opts(None, Vec::new(), true))
}

fn opts(to: Option<Result<u64, Errno>>, files: Vec<Arc<OpenFile>>, nonblock: bool) -> SendOpts {
    SendOpts {
        to,
        files,
        creds: ME,
        explicit_creds: None,
        nonblock,
    }
}

fn recv(s: &UnixSocket, max: usize) -> Result<Vec<u8>, Errno> {
    s.recv(
        max,
        RecvOpts {
            nonblock: true,
            ..Default::default()
        },
    )
    .map(|r| r.data)
}

fn file(s: &Arc<UnixSocket>) -> Arc<OpenFile> {
    OpenFile::special(None, None, s.clone(), libc::O_RDWR as u32)
}

#[test]
fn stream_pair_eof_and_epipe() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    assert_eq!(send(&a, b"hello"), Ok(5));
    assert_eq!(send(&a, b" world"), Ok(6));
    // Pieces of a stream run together.
    assert_eq!(recv(&b, 64), Ok(b"hello world".to_vec()));
    assert_eq!(recv(&b, 64), Err(libc::EAGAIN));
    assert_eq!(b.peer_cred(), ME);
    drop(a);
    // The peer closed with nothing unread: we see EOF, then EPIPE.
    assert_eq!(recv(&b, 64), Ok(Vec::new()));
    assert_eq!(send(&b, b"y"), Err(libc::EPIPE));
}

#[test]
fn close_with_unread_data_resets_peer() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    assert_eq!(send(&a, b"unread"), Ok(6));
    drop(b);
    assert_eq!(recv(&a, 8), Err(libc::ECONNRESET));
    assert_eq!(recv(&a, 8), Ok(Vec::new()));
}

#[test]
fn shutdown_mirrors_on_the_peer() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    assert_eq!(send(&a, b"abc"), Ok(3));
    a.shutdown(libc::SHUT_WR).unwrap();
    assert_eq!(send(&a, b"x"), Err(libc::EPIPE));
    assert_eq!(recv(&b, 2), Ok(b"ab".to_vec()));
    assert_eq!(recv(&b, 2), Ok(b"c".to_vec()));
    assert_eq!(recv(&b, 2), Ok(Vec::new()));
    b.shutdown(libc::SHUT_RD).unwrap();
    assert_eq!(send(&a, b"x"), Err(libc::EPIPE));
    assert_eq!(a.shutdown(3), Err(libc::EINVAL));
    let lone = UnixSocket::new(SockType::Stream, ME);
    assert_eq!(lone.shutdown(libc::SHUT_RDWR), Ok(()));
    assert_eq!(recv(&lone, 1), Err(libc::EINVAL));
    assert_eq!(send(&lone, b"x"), Err(libc::ENOTCONN));
}

#[test]
fn datagrams_keep_boundaries_and_truncate() {
    let (a, b) = UnixSocket::pair(SockType::Dgram, ME, ME);
    assert_eq!(send(&a, b"first message"), Ok(13));
    assert_eq!(send(&a, b""), Ok(0));
    assert_eq!(send(&a, b"second"), Ok(6));
    let peek = b
        .recv(
            5,
            RecvOpts {
                peek: true,
                trunc: true,
                nonblock: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (peek.data.as_slice(), peek.len, peek.truncated),
        (&b"first"[..], 13, true)
    );
    let r = b.recv(5, RecvOpts::default()).unwrap();
    assert_eq!(
        (r.data.as_slice(), r.len, r.truncated),
        (&b"first"[..], 5, true)
    );
    assert_eq!(recv(&b, 64), Ok(Vec::new()));
    assert_eq!(recv(&b, 64), Ok(b"second".to_vec()));
    assert_eq!(recv(&b, 64), Err(libc::EAGAIN));
    let big = vec![0u8; DEFAULT_BUF];
    assert_eq!(send(&a, &big), Err(libc::EMSGSIZE));
    // A datagram peer's close is no EOF.
    drop(a);
    assert_eq!(recv(&b, 64), Err(libc::EAGAIN));
    assert_eq!(send(&b, b"x"), Err(libc::ECONNREFUSED));
    assert_eq!(send(&b, b"x"), Err(libc::ENOTCONN));
}

#[test]
fn seqpacket_eof_after_peer_close() {
    let (a, b) = UnixSocket::pair(SockType::SeqPacket, ME, ME);
    assert_eq!(send(&a, b"one"), Ok(3));
    assert_eq!(send(&a, b"two"), Ok(3));
    assert_eq!(recv(&b, 64), Ok(b"one".to_vec()));
    drop(a);
    assert_eq!(recv(&b, 64), Ok(b"two".to_vec()));
    assert_eq!(recv(&b, 64), Ok(Vec::new()));
    assert_eq!(send(&b, b"x"), Err(libc::EPIPE));
}

#[test]
fn connect_waits_in_the_backlog() {
    let l = UnixSocket::new(SockType::Stream, ME);
    assert_eq!(l.listen(0, ME), Err(libc::EINVAL)); // unbound
    l.bind(UnixAddr::Abstract(b"test-backlog".to_vec()))
        .unwrap();
    assert_eq!(
        l.bind(UnixAddr::Abstract(b"other".to_vec())),
        Err(libc::EINVAL)
    );
    l.listen(1, ME).unwrap();
    assert!(l.listening());
    let c1 = UnixSocket::new(SockType::Stream, ME);
    let c2 = UnixSocket::new(SockType::Stream, ME);
    let c3 = UnixSocket::new(SockType::Stream, ME);
    let peer = Ucred { pid: 9, ..ME };
    assert_eq!(c1.connect(Ok(l.id()), peer, true), Ok(()));
    assert_eq!(c2.connect(Ok(l.id()), peer, true), Ok(()));
    // Backlog 1 holds two pending connections, as on Linux.
    assert_eq!(c3.connect(Ok(l.id()), peer, true), Err(libc::EAGAIN));
    // The listener's backlog is checked before the caller's own state, as on Linux.
    assert_eq!(c1.connect(Ok(l.id()), peer, true), Err(libc::EAGAIN));
    assert_eq!(send(&c1, b"early"), Ok(5));
    assert_eq!(
        c1.peer_addr(),
        Ok(Some(UnixAddr::Abstract(b"test-backlog".to_vec())))
    );
    let s1 = l.accept(ME, true).unwrap();
    assert_eq!(s1.peer_cred(), peer);
    assert_eq!(
        s1.local_addr(),
        Some(UnixAddr::Abstract(b"test-backlog".to_vec()))
    );
    assert_eq!(s1.peer_addr(), Ok(None));
    assert_eq!(recv(&s1, 64), Ok(b"early".to_vec()));
    assert_eq!(c3.connect(Ok(l.id()), peer, true), Ok(()));
    assert_eq!(c1.connect(Ok(l.id()), peer, true), Err(libc::EAGAIN));
    let _s2 = l.accept(ME, true).unwrap();
    assert_eq!(c1.connect(Ok(l.id()), peer, true), Err(libc::EISCONN));
    let dg = UnixSocket::new(SockType::Dgram, ME);
    assert_eq!(dg.connect(Ok(l.id()), ME, true), Err(libc::EPROTOTYPE));
    // Closing the listener resets the connections it never accepted.
    drop(l);
    assert_eq!(recv(&c3, 8), Err(libc::ECONNRESET));
    assert_eq!(recv(&c3, 8), Ok(Vec::new()));
    assert_eq!(recv(&c2, 8), Err(libc::EAGAIN));
    let c4 = UnixSocket::new(SockType::Stream, ME);
    assert_eq!(
        c4.connect(Ok(s1.id() + 1_000_000), ME, true),
        Err(libc::ECONNREFUSED)
    );
    assert_eq!(c4.connect(Err(libc::ENOENT), ME, true), Err(libc::ENOENT));
}

#[test]
fn rights_travel_and_are_released() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    let (x, y) = UnixSocket::pair(SockType::Stream, ME, ME);
    let fx = file(&x);
    let weak: Weak<OpenFile> = Arc::downgrade(&fx);
    assert_eq!(a.send(b"f", opts(None, vec![fx], true)), Ok(1));
    assert_eq!(send(&a, b"g"), Ok(1));
    // Reading stops after the piece that carried files.
    let got = b
        .recv(
            8,
            RecvOpts {
                nonblock: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(got.data, b"f");
    assert_eq!(got.files.len(), 1);
    assert_eq!(
        send(
            got.files[0].special_desc().unwrap().unix_socket().unwrap(),
            b"z"
        ),
        Ok(1)
    );
    assert_eq!(recv(&y, 8), Ok(b"z".to_vec()));
    drop(got);
    assert!(weak.upgrade().is_none());
    // Files queued at a socket that closes are released with it.
    let fy = file(&y);
    let weak = Arc::downgrade(&fy);
    assert_eq!(a.send(b"h", opts(None, vec![fy], true)), Ok(1));
    drop(y);
    assert!(weak.upgrade().is_some());
    drop(b);
    assert!(weak.upgrade().is_none());
}

#[test]
fn cycles_in_flight_are_collected() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    let fa = file(&a);
    let fb = file(&b);
    let (wa, wb) = (Arc::downgrade(&a), Arc::downgrade(&b));
    // Each end travels to the other's queue.
    assert_eq!(a.send(b"1", opts(None, vec![fb.clone()], true)), Ok(1));
    assert_eq!(b.send(b"2", opts(None, vec![fa.clone()], true)), Ok(1));
    drop((a, b, fa, fb));
    collect_garbage();
    assert!(wa.upgrade().is_none());
    assert!(wb.upgrade().is_none());
}

#[test]
fn credentials_are_attached_on_request() {
    let (a, b) = UnixSocket::pair(SockType::Dgram, ME, ME);
    assert_eq!(send(&a, b"x"), Ok(1));
    b.set_passcred(true).unwrap();
    assert_eq!(send(&a, b"y"), Ok(1));
    let r1 = b.recv(8, RecvOpts::default()).unwrap();
    let r2 = b.recv(8, RecvOpts::default()).unwrap();
    assert_eq!(r1.creds, Some(Ucred::NONE));
    assert_eq!(r2.creds, Some(ME));
    let forged = Ucred {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    let mut o = opts(None, Vec::new(), true);
    o.explicit_creds = Some(forged);
    assert_eq!(a.send(b"z", o), Ok(1));
    assert_eq!(b.recv(8, RecvOpts::default()).unwrap().creds, Some(forged));
}

#[test]
fn full_stream_blocks_until_read() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    a.set_sndbuf(4096, false).unwrap();
    assert_eq!(a.sndbuf(), 8192);
    let big = vec![1u8; 100_000];
    let n = send(&a, &big).unwrap();
    assert!(n > 0 && n < big.len(), "{n}");
    assert_eq!(send(&a, b"x"), Err(libc::EAGAIN));
    let writer = std::thread::spawn(move || a.send(&big, opts(None, Vec::new(), false)));
    let mut total = 0;
    while total < n + 100_000 {
        let r = b.recv(65536, RecvOpts::default()).expect("blocking read");
        total += r.data.len();
    }
    assert_eq!(writer.join().unwrap(), Ok(100_000));
}

#[test]
fn recv_timeout_gives_eagain() {
    let (_a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    b.set_timeout(false, Some(Duration::from_millis(20)));
    let start = std::time::Instant::now();
    assert_eq!(b.recv(8, RecvOpts::default()).err(), Some(libc::EAGAIN));
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn dgram_addresses_and_permissions() {
    let s = UnixSocket::new(SockType::Dgram, ME);
    s.bind(UnixAddr::Path(b"/tmp/s".to_vec())).unwrap();
    let c = UnixSocket::new(SockType::Dgram, ME);
    c.bind(UnixAddr::Abstract(b"c".to_vec())).unwrap();
    assert_eq!(
        c.send(b"hi", opts(Some(Ok(s.id())), Vec::new(), true)),
        Ok(2)
    );
    let r = s.recv(8, RecvOpts::default()).unwrap();
    assert_eq!(r.from, Some(UnixAddr::Abstract(b"c".to_vec())));
    // A receiver connected elsewhere refuses others.
    let third = UnixSocket::new(SockType::Dgram, ME);
    s.connect(Ok(third.id()), ME, true).unwrap();
    assert_eq!(
        c.send(b"no", opts(Some(Ok(s.id())), Vec::new(), true)),
        Err(libc::EPERM)
    );
    assert_eq!(s.peer_addr(), Ok(None));
    s.disconnect().unwrap();
    assert_eq!(s.peer_addr(), Err(libc::ENOTCONN));
    // An unconnected receiver queues at most MAX_DGRAM_QLEN + 1 messages from strangers.
    for _ in 0..=MAX_DGRAM_QLEN {
        assert_eq!(
            c.send(b".", opts(Some(Ok(s.id())), Vec::new(), true)),
            Ok(1)
        );
    }
    assert_eq!(
        c.send(b".", opts(Some(Ok(s.id())), Vec::new(), true)),
        Err(libc::EAGAIN)
    );
    assert_eq!(c.readiness(EV_OUT), EV_OUT);
    c.connect(Ok(s.id()), ME, true).unwrap();
    assert_eq!(c.readiness(EV_OUT), 0);
    assert_eq!(recv(&s, 8), Ok(b".".to_vec()));
    assert_eq!(c.readiness(EV_OUT), EV_OUT);
}

#[test]
fn addresses_parse_and_print() {
    let mut raw = vec![1u8, 0];
    assert_eq!(UnixAddr::parse(&raw, true), Ok(None));
    assert_eq!(UnixAddr::parse(&raw, false), Err(libc::EINVAL));
    raw.extend_from_slice(b"sock\0junk");
    let a = UnixAddr::parse(&raw, false).unwrap().unwrap();
    assert_eq!(a, UnixAddr::Path(b"sock".to_vec()));
    assert_eq!(UnixAddr::to_sockaddr(Some(&a)).len(), 2 + 4 + 1);
    let abs = UnixAddr::parse(&[1, 0, 0, b'a', 0, b'b'], false)
        .unwrap()
        .unwrap();
    assert_eq!(abs, UnixAddr::Abstract(b"a\0b".to_vec()));
    assert_eq!(UnixAddr::to_sockaddr(Some(&abs)).len(), 6);
    assert_eq!(UnixAddr::parse(&[2, 0, b'x'], false), Err(libc::EINVAL));
    assert_eq!(UnixAddr::parse(&[1; 111], false), Err(libc::EINVAL));
    assert_eq!(UnixAddr::to_sockaddr(None), vec![1, 0]);
}

#[test]
fn readiness_follows_state() {
    let (a, b) = UnixSocket::pair(SockType::Stream, ME, ME);
    let all = ALL_EVENTS;
    assert_eq!(a.readiness(all) & (EV_IN | POLLHUP), 0);
    assert_ne!(a.readiness(all) & POLLOUT, 0);
    send(&b, b"x").unwrap();
    assert_ne!(a.readiness(all) & POLLIN, 0);
    drop(b);
    assert_ne!(a.readiness(all) & POLLHUP, 0);
    let lone = UnixSocket::new(SockType::Stream, ME);
    assert_ne!(lone.readiness(all) & POLLHUP, 0);
    assert_eq!(a.stat().unwrap().mode, libc::S_IFSOCK | 0o777);
    assert_eq!(a.bytes_available(), Ok(1));
}

#[test]
fn blocked_calls_are_woken() {
    let l = UnixSocket::new(SockType::SeqPacket, ME);
    l.bind(UnixAddr::Abstract(b"test-wake".to_vec())).unwrap();
    l.listen(0, ME).unwrap();
    let target = l.id();
    // accept waits for a connection.
    let client = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let c = UnixSocket::new(SockType::SeqPacket, ME);
        c.connect(Ok(target), ME, false).map(|_| c)
    });
    let s1 = l.accept(ME, false).unwrap();
    let c1 = client.join().unwrap().unwrap();
    // Fill the backlog (0 holds one), then a blocking connect waits for an accept.
    let c2 = UnixSocket::new(SockType::SeqPacket, ME);
    c2.connect(Ok(target), ME, true).unwrap();
    let waiter = std::thread::spawn(move || {
        let c3 = UnixSocket::new(SockType::SeqPacket, ME);
        c3.connect(Ok(target), ME, false).map(|_| c3)
    });
    std::thread::sleep(Duration::from_millis(20));
    let _s2 = l.accept(ME, true).unwrap();
    let _c3 = waiter.join().unwrap().unwrap();
    // A blocking receive waits for the message.
    let reader = std::thread::spawn(move || s1.recv(16, RecvOpts::default()).map(|r| r.data));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(send(&c1, b"wake"), Ok(4));
    assert_eq!(reader.join().unwrap(), Ok(b"wake".to_vec()));
    drop(c2);
}
