//! Seeing a node register with this network namespace's epmd as it happens,
//! without asking epmd: its answer to a registration (ALIVE2_X_RESP or
//! ALIVE2_RESP with result 0) crosses the loopback interface, and a packet
//! socket bound to `lo` with a classic BPF filter that passes only those
//! answers becomes readable once per registration. The kernel runs the filter
//! on each loopback packet (a few instructions) and wakes nobody for the
//! rest, so a reporter waiting for its booting VM sleeps until the VM is
//! there instead of looking at a fixed pace (issue 19: those looks were most
//! of the reporters' CPU while the VMs of a cluster boot on shared cores).
//!
//! A packet socket needs CAP_NET_RAW: root in a container has it with
//! Docker's and Kubernetes' default capabilities, a `USER app` does not, and
//! [`RegistrationWatch::open`] then fails (the caller looks another way).
//! Nothing of a passing packet is read but that it passed: the filter alone
//! judges it, and a flood of forged answers can only bring more looks.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, socket};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// epmd's answer to a registration, OTP 23 and later (erts: epmd.h,
/// EPMD_ALIVE2_X_RESP, a 32-bit creation follows the result).
pub const ALIVE2_X_RESP: u8 = 118;
/// epmd's answer to a registration before OTP 23 (EPMD_ALIVE2_RESP).
pub const ALIVE2_RESP: u8 = 121;

/// A packet socket on `lo` that passes epmd's successful registration
/// answers on `epmd_port` and nothing else.
#[derive(Debug)]
pub struct RegistrationWatch(AsyncFd<OwnedFd>);

impl RegistrationWatch {
    /// Opens the watch in this network namespace; needs CAP_NET_RAW and a
    /// tokio runtime with I/O enabled.
    pub fn open(epmd_port: u16) -> io::Result<Self> {
        // Protocol 0: nothing arrives until the bind below, by which time the
        // filter is attached (no unfiltered packet is ever queued).
        let fd = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        attach_filter(&fd, &filter(epmd_port))?;
        // Every loopback packet passes a tap twice, sent and received; the
        // received copy is enough. Linux 4.20 and later; without it an
        // answer is seen twice, which costs nothing more than a wakeup.
        let _ = set_option(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1);
        bind_loopback(&fd)?;
        // SAFETY: an OwnedFd holds its one open descriptor until dropped,
        // and the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(RegistrationWatch(fd))
    }

    /// Returns once a registration answer was seen since the last call
    /// (up to `DRAIN_AT_MOST` queued meanwhile taken together; a flood
    /// leaves the rest for the next call). Cancel-safe.
    pub async fn seen(&self) -> io::Result<()> {
        let mut packet = [0u8; KEPT_BYTES as usize];
        loop {
            let mut ready = self.0.readable().await?;
            let mut passed = 0;
            while passed < DRAIN_AT_MOST {
                match recv(self.0.as_raw_fd(), &mut packet, MsgFlags::MSG_DONTWAIT) {
                    Ok(_) => passed += 1,
                    Err(Errno::EAGAIN) => {
                        ready.clear_ready();
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if passed > 0 {
                return Ok(());
            }
        }
    }
}

/// How many bytes of a passing packet are kept (none are read for meaning).
const KEPT_BYTES: u32 = 16;
/// Passing packets taken in by one [`RegistrationWatch::seen`]: a VM's
/// registration is one (two without PACKET_IGNORE_OUTGOING).
const DRAIN_AT_MOST: usize = 64;

/// The filter, its offsets from the network header (a SOCK_DGRAM packet
/// socket): an IPv4 (unfragmented) or IPv6 TCP segment from `epmd_port`
/// whose payload starts with ALIVE2_X_RESP or ALIVE2_RESP and result 0.
/// A load past the end of the packet ends the filter with "drop", so a
/// segment without payload never passes.
fn filter(epmd_port: u16) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
        BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_MISC, BPF_MSH, BPF_RET, BPF_RSH, BPF_TAX,
        BPF_W, BPF_X,
    };
    // The instructions' positions that are jumped to.
    const IPV6: u8 = 8;
    const TCP: u8 = 12;
    const RESULT: u8 = 22;
    const PASS: u8 = 24;
    const DROP: u8 = 25;
    // A jump at `at` to `to`, as the offset from the next instruction.
    let to = |at: u8, to: u8| to - at - 1;
    let op = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |at: u8, code: u32, k: u32, yes: u8, no: u8| libc::sock_filter {
        code: (BPF_JMP | code | BPF_K) as u16,
        jt: to(at, yes),
        jf: to(at, no),
        k,
    };
    let ethertype = (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32;
    let program = vec![
        op(BPF_LD | BPF_W | BPF_ABS, ethertype),
        jump(1, BPF_JEQ, libc::ETH_P_IP as u32, 2, IPV6),
        // IPv4: TCP, not a later fragment; X = the header's length.
        op(BPF_LD | BPF_B | BPF_ABS, 9),
        jump(3, BPF_JEQ, libc::IPPROTO_TCP as u32, 4, DROP),
        op(BPF_LD | BPF_H | BPF_ABS, 6),
        jump(5, BPF_JSET, 0x1fff, DROP, 6),
        op(BPF_LDX | BPF_B | BPF_MSH, 0),
        op(BPF_JMP | BPF_JA, u32::from(to(7, TCP))),
        // IPv6: TCP right after the fixed header (loopback adds no
        // extension headers); X = 40.
        jump(IPV6, BPF_JEQ, libc::ETH_P_IPV6 as u32, 9, DROP),
        op(BPF_LD | BPF_B | BPF_ABS, 6),
        jump(10, BPF_JEQ, libc::IPPROTO_TCP as u32, 11, DROP),
        op(BPF_LDX | BPF_W | BPF_IMM, 40),
        // TCP at X: from epmd's port; X = where the payload starts.
        op(BPF_LD | BPF_H | BPF_IND, 0),
        jump(13, BPF_JEQ, u32::from(epmd_port), 14, DROP),
        op(BPF_LD | BPF_B | BPF_IND, 12),
        op(BPF_ALU | BPF_RSH | BPF_K, 2),
        op(BPF_ALU | BPF_AND | BPF_K, 0x3c),
        op(BPF_ALU | BPF_ADD | BPF_X, 0),
        op(BPF_MISC | BPF_TAX, 0),
        // The answer's tag, then its result.
        op(BPF_LD | BPF_B | BPF_IND, 0),
        jump(20, BPF_JEQ, u32::from(ALIVE2_X_RESP), RESULT, 21),
        jump(21, BPF_JEQ, u32::from(ALIVE2_RESP), RESULT, DROP),
        op(BPF_LD | BPF_B | BPF_IND, 1),
        jump(23, BPF_JEQ, 0, PASS, DROP),
        op(BPF_RET | BPF_K, KEPT_BYTES),
        op(BPF_RET | BPF_K, 0),
    ];
    debug_assert_eq!(program.len(), usize::from(DROP) + 1);
    program
}

fn attach_filter(fd: &OwnedFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        // The kernel copies the program and never writes through it.
        filter: program.as_ptr().cast_mut(),
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// setsockopt with a value of type `T` (an int or a C struct the kernel
/// reads and copies).
fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` (and what it points to) outlives the call, and the
    // length passed is T's own.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// Every protocol, on this namespace's loopback interface only: a tap on
/// all interfaces would see every packet of every namespace on some
/// kernels before dropping the foreign ones.
fn bind_loopback(fd: &OwnedFd) -> io::Result<()> {
    let index = nix::net::if_::if_nametoindex("lo")?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = index as libc::c_int;
    // SAFETY: `addr` is a live sockaddr_ll and the length passed is its own.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop).map_err(io::Error::from)
}

/// A stand-in for epmd on loopback, for the tests here and of the wait:
/// each answer is written on a connection of its own, as epmd answers each
/// request.
#[cfg(test)]
pub(crate) struct EpmdStandIn(tokio::net::TcpListener);

#[cfg(test)]
impl EpmdStandIn {
    pub(crate) async fn on(ip: std::net::IpAddr) -> EpmdStandIn {
        let at = std::net::SocketAddr::new(ip, 0);
        EpmdStandIn(
            tokio::net::TcpListener::bind(at)
                .await
                .expect("bind a loopback port"),
        )
    }

    pub(crate) fn port(&self) -> u16 {
        self.0.local_addr().expect("local address").port()
    }

    pub(crate) async fn answer(&self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let at = self.0.local_addr().expect("address");
        let client = tokio::net::TcpStream::connect(at).await.expect("connect");
        let (mut server, _) = self.0.accept().await.expect("accept");
        server.write_all(bytes).await.expect("write");
        drop(client);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    async fn passes(watch: &RegistrationWatch, wait: Duration) -> bool {
        tokio::time::timeout(wait, watch.seen()).await.is_ok()
    }

    /// The test command runs as root: a watch that cannot open fails here
    /// instead of passing unseen.
    #[tokio::test]
    async fn only_a_successful_registration_answer_from_epmd_passes() {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            let epmd = EpmdStandIn::on(ip).await;
            let other = EpmdStandIn::on(ip).await;
            let watch = RegistrationWatch::open(epmd.port())
                .expect("a packet socket on lo (the tests run as root, with CAP_NET_RAW)");
            let quiet = Duration::from_millis(300);
            // Answers that are not a registration, a refused one, another
            // port's: nothing passes.
            epmd.answer(&[b'w', 1]).await; // PORT2_RESP: not registered
            epmd.answer(&[0, 0, 0x11, 0x11]).await; // NAMES_RESP
            epmd.answer(&[ALIVE2_X_RESP, 1, 0, 0, 0, 0]).await; // name taken
            other.answer(&[ALIVE2_X_RESP, 0, 0, 0, 0, 1]).await;
            assert!(!passes(&watch, quiet).await, "{ip}: nothing should pass");
            // Registered, in either version's answer.
            for tag in [ALIVE2_X_RESP, ALIVE2_RESP] {
                epmd.answer(&[tag, 0, 0, 0, 0, 1]).await;
                assert!(
                    passes(&watch, Duration::from_secs(10)).await,
                    "{ip}: answer {tag} with result 0 should pass"
                );
            }
        }
    }
}
