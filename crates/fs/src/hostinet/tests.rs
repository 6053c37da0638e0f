use super::*;
use std::time::Instant;

fn loopback_v4() -> Vec<u8> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in is plain data.
    unsafe {
        std::slice::from_raw_parts(
            (&sa as *const libc::sockaddr_in).cast::<u8>(),
            std::mem::size_of::<libc::sockaddr_in>(),
        )
    }
    .to_vec()
}

fn pair() -> (HostSocket, HostSocket) {
    let l = HostSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    l.bind(&loopback_v4()).unwrap();
    l.listen(4).unwrap();
    let addr = l.local_addr().unwrap();
    let c = HostSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    c.connect(&addr, false).unwrap();
    let (s, peer) = l.accept(false).unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    (c, s)
}

#[test]
fn stream_round_trip_and_flags() {
    let (c, s) = pair();
    assert_eq!(
        s.recv(&mut [0u8; 4], 0, true, false, 0).unwrap_err(),
        libc::EAGAIN
    );
    assert_eq!(c.send(b"hello world", None, &[], 0, false).unwrap(), 11);
    let mut buf = [0u8; 5];
    // WAITALL with PEEK waits for the whole buffer and leaves the data queued.
    let r = s
        .recv(
            &mut buf,
            libc::MSG_PEEK | libc::MSG_WAITALL,
            false,
            false,
            0,
        )
        .unwrap();
    assert_eq!((r.len, &buf), (5, b"hello"));
    let mut all = [0u8; 11];
    assert_eq!(
        s.recv(&mut all, libc::MSG_WAITALL, false, false, 0)
            .unwrap()
            .len,
        11
    );
    assert_eq!(&all, b"hello world");
    assert_eq!(s.bytes_available().unwrap(), 0);
    c.shutdown(libc::SHUT_WR).unwrap();
    assert_eq!(s.recv(&mut buf, 0, false, false, 0).unwrap().len, 0);
    assert_ne!(
        s.readiness(crate::waiter::POLLIN) & crate::waiter::POLLIN,
        0
    );
}

#[test]
fn timeouts_bound_waits() {
    let (c, _s) = pair();
    c.set_timeout(false, Some(Duration::from_millis(30)));
    let start = Instant::now();
    assert_eq!(
        c.recv(&mut [0u8; 4], 0, false, false, 0).unwrap_err(),
        libc::EAGAIN
    );
    assert!(start.elapsed() >= Duration::from_millis(25));
}

#[test]
fn refused_connection_reports_the_error() {
    let l = HostSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    l.bind(&loopback_v4()).unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let c = HostSocket::new(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    assert_eq!(c.connect(&addr, false).unwrap_err(), libc::ECONNREFUSED);
}

#[test]
fn a_lingering_close_does_not_block_the_caller() {
    let (c, s) = pair();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 5,
    };
    // SAFETY: linger is plain data.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&linger as *const libc::linger).cast::<u8>(),
            std::mem::size_of::<libc::linger>(),
        )
    };
    c.setsockopt(libc::SOL_SOCKET, libc::SO_LINGER, bytes)
        .unwrap();
    // Fill every buffer: the peer never reads, so unsent data stays queued.
    let chunk = vec![7u8; 1 << 16];
    while c.send(&chunk, None, &[], 0, true).is_ok() {}
    let start = Instant::now();
    drop(c);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "close waited {:?}",
        start.elapsed()
    );
    drop(s);
}
