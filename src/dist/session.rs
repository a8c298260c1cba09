//! One live connection to the local node, as a hidden node.
//!
//! Connecting: epmd lookup on the node's host → TCP to the node's dist port →
//! client handshake (without the PUBLISHED flag, so the node sees us as hidden
//! and we never show up in `erlang:nodes()`). Then two tasks run for the life
//! of the session: a reader that answers every tick (the node drops a peer
//! that stays silent for net_ticktime) and routes `{Ref, Result}` replies to
//! the waiting call, and a writer that owns the sending half. Dropping the
//! `Session` aborts both and closes the socket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use erl_dist::epmd::{DEFAULT_EPMD_PORT, EpmdClient};
use erl_dist::handshake::{ClientSideHandshake, HandshakeError, HandshakeStatus};
use erl_dist::message::{Message, Receiver, RecvError, Sender, channel};
use erl_dist::node::{Creation, LocalNode, NodeName};
use erl_dist::term::{Atom, Pid, Reference, Term};
use erl_dist::{HIGHEST_DISTRIBUTION_PROTOCOL_VERSION, LOWEST_DISTRIBUTION_PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, trace};

use super::DistError;
use super::frames::CheckedFrames;
use super::relay::{self, NodeEvent};
use super::rpc::{self, atom};
use super::stream::SharedStream;
use crate::secret::Secret;

/// Knobs of a session; `Default` fits a release in the same container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// epmd's port on the node's host (OTP 25 has no ERL_DIST_PORT; a node
    /// started with `-erl_epmd_port P` registers with the epmd on P).
    pub epmd_port: u16,
    /// Bound on each connection step: the epmd lookup, the TCP connect, the handshake.
    pub connect_timeout: Duration,
    /// A call that gets no reply within this is an error, never a hang.
    pub call_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            epmd_port: DEFAULT_EPMD_PORT,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// One live connection to the local node; ticks are answered in the background.
#[derive(Debug)]
pub struct Session {
    local_node: String,
    own_name: String,
    self_pid: Pid,
    creation: u32,
    next_ref: AtomicU32,
    commands: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    tasks: [JoinHandle<()>; 2],
    call_timeout: Duration,
    /// What the relay says, until taken (see `take_events`).
    events: Option<mpsc::Receiver<NodeEvent>>,
}

/// Relay events queued before the reporter reads them: every event leads to
/// the same full sync, so once this many wait, more add nothing and are
/// dropped (a flapping VM cannot grow the queue).
pub(crate) const EVENTS_QUEUED: usize = 64;

/// What the background tasks and the callers share.
#[derive(Debug, Default)]
struct Shared {
    closed: AtomicBool,
    /// Calls waiting for their reply, by the id words of their reference.
    pending: Mutex<HashMap<Vec<u32>, oneshot::Sender<Term>>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, HashMap<Vec<u32>, oneshot::Sender<Term>>> {
        // A poisoned map is still a valid map: nothing holds it across a panic point.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the session dead and wakes every waiting call (they see `Closed`).
    /// `closed` is set before the map is cleared so a call registering
    /// concurrently either gets cleared here or sees `closed` right after.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pending().clear();
    }

    fn complete(&self, key: &[u32], result: Term) {
        match self.pending().remove(key) {
            // The caller may have given up in the meantime: nothing to do then.
            Some(waiter) => {
                let _ = waiter.send(result);
            }
            None => trace!(?key, "reply to a call nobody waits for any more"),
        }
    }
}

impl Session {
    /// Connects to `local_node` (e.g. `my_app@10.0.0.5` or `my_app@fd00::1`) as
    /// the hidden node `own_name` (unique, long names, e.g. `beamup-<pid>@<address>`).
    pub async fn connect(
        local_node: &str,
        own_name: &str,
        cookie: &Secret,
    ) -> Result<Session, DistError> {
        Self::connect_with(local_node, own_name, cookie, &SessionOptions::default()).await
    }

    pub async fn connect_with(
        local_node: &str,
        own_name: &str,
        cookie: &Secret,
        options: &SessionOptions,
    ) -> Result<Session, DistError> {
        let node = parse_name(local_node)?;
        let own = parse_name(own_name)?;
        let limit = options.connect_timeout;

        // Within the limit too: a host name (a `--peers` entry) may sit on a
        // DNS server that never answers.
        let epmd_addrs = with_timeout(
            limit,
            format!("resolving {}", node.host()),
            resolve(node.host(), options.epmd_port),
        )
        .await??;
        let (epmd_addr, port) = with_timeout(
            limit,
            format!("asking epmd on {} for {}", node.host(), node.name()),
            lookup_port(&node, &epmd_addrs),
        )
        .await??;

        // The dist port lives on the same address that answered for epmd.
        let dist_addr = SocketAddr::new(epmd_addr.ip(), port);
        let stream = with_timeout(
            limit,
            format!("connecting to {local_node} at {dist_addr}"),
            TcpStream::connect(dist_addr),
        )
        .await?
        .map_err(|e| {
            DistError::Io(format!(
                "cannot connect to {local_node} at {dist_addr}: {e}"
            ))
        })?;
        // Ticks and calls are tiny: send them now rather than coalescing.
        stream
            .set_nodelay(true)
            .map_err(|e| DistError::Io(format!("setting TCP_NODELAY: {e}")))?;

        let creation = new_creation();
        // Default flags are OTP's mandatory set without PUBLISHED: a hidden node.
        let me = LocalNode::new(own.clone(), Creation::new(creation));
        let (stream, peer) = with_timeout(
            limit,
            format!("the handshake with {local_node}"),
            handshake(
                SharedStream::new(stream),
                me.clone(),
                cookie,
                local_node,
                own_name,
            ),
        )
        .await??;
        if peer.name.to_string() != local_node {
            debug!(asked = %local_node, answered = %peer.name, "the local node calls itself differently");
        }

        let shared = Arc::new(Shared::default());
        let (commands, queue) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENTS_QUEUED);
        // erl_dist reads what the node announces; CheckedFrames bounds it first.
        let (tx, rx) = channel(CheckedFrames::new(stream), me.flags & peer.flags);
        let reader = tokio::spawn(read_loop(
            rx,
            Arc::clone(&shared),
            commands.clone(),
            events_tx,
            own_name.to_owned(),
            local_node.to_owned(),
        ));
        let writer = tokio::spawn(write_loop(tx, queue, Arc::clone(&shared)));
        debug!(local = %local_node, own = %own_name, "connected to the local node as a hidden node");

        Ok(Session {
            local_node: local_node.to_owned(),
            own_name: own_name.to_owned(),
            self_pid: Pid::new(own_name, 1, 0, creation),
            creation,
            next_ref: AtomicU32::new(1),
            commands,
            shared,
            tasks: [reader, writer],
            call_timeout: options.call_timeout,
            events: Some(events),
        })
    }

    /// The node this session talks to.
    pub fn local_node(&self) -> &str {
        &self.local_node
    }

    /// Our own (hidden) node name.
    pub fn own_name(&self) -> &str {
        &self.own_name
    }

    /// The pid messages to us are addressed to (the relay's owner).
    pub(crate) fn self_pid(&self) -> Pid {
        self.self_pid.clone()
    }

    /// The relay's events for this session, once: the receiver ends (`None`)
    /// when the connection does.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<NodeEvent>> {
        self.events.take()
    }

    /// `erlang:nodes()` on the local node: the visible nodes it is connected to.
    pub async fn nodes(&self) -> Result<Vec<String>, DistError> {
        rpc::decode_nodes(self.call("erlang", "nodes", vec![]).await?)
    }

    /// `net_kernel:connect_node(Node)` on the local node.
    pub async fn connect_node(&self, node: &str) -> Result<bool, DistError> {
        let pending = self.start_call("net_kernel", "connect_node", vec![atom(node)])?;
        rpc::decode_bool(
            pending.wait(self.call_timeout).await?,
            "net_kernel:connect_node/1",
        )
    }

    /// `erlang:disconnect_node(Node)` on the local node.
    pub async fn disconnect_node(&self, node: &str) -> Result<bool, DistError> {
        let pending = self.start_call("erlang", "disconnect_node", vec![atom(node)])?;
        rpc::decode_bool(
            pending.wait(self.call_timeout).await?,
            "erlang:disconnect_node/1",
        )
    }

    /// Runs `module:function(args...)` on the local node through `rex`.
    /// `{badrpc, Reason}` comes back as [`DistError::Rpc`].
    pub async fn call(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
    ) -> Result<Term, DistError> {
        let result = self
            .start_call(module, function, args)?
            .wait(self.call_timeout)
            .await?;
        rpc::check_badrpc(result)
    }

    /// False once the connection dropped; the caller then drops the session
    /// and connects again.
    pub fn is_alive(&self) -> bool {
        !self.shared.closed.load(Ordering::SeqCst)
    }

    /// Sends a call and returns the handle to wait for its reply, so several
    /// calls can be in flight at once (rex runs each in its own process).
    pub(crate) fn start_call(
        &self,
        module: &str,
        function: &str,
        args: Vec<Term>,
    ) -> Result<PendingCall, DistError> {
        let closed = || DistError::Closed {
            node: self.local_node.clone(),
        };
        if !self.is_alive() {
            return Err(closed());
        }
        let reference = self.new_ref();
        let key = reference.id.clone();
        let (waiter, reply) = oneshot::channel();
        self.shared.pending().insert(key.clone(), waiter);
        let pending = PendingCall {
            reply,
            key,
            shared: Arc::clone(&self.shared),
            what: format!("{module}:{function}/{}", args.len()),
            node: self.local_node.clone(),
            started: Instant::now(),
        };
        // Checked after registering: see `Shared::close`.
        if !self.is_alive() {
            return Err(closed());
        }
        let message = rpc::call_message(self.self_pid.clone(), reference, module, function, args);
        self.commands.send(message).map_err(|_| closed())?;
        Ok(pending)
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    fn new_ref(&self) -> Reference {
        let n = self.next_ref.fetch_add(1, Ordering::Relaxed);
        // The first id word of an Erlang reference holds 18 bits; keep it in
        // range so the node echoes the reference back unchanged.
        Reference {
            node: Atom::from(self.own_name.as_str()),
            id: vec![n & 0x3_ffff, n >> 18, self.creation],
            creation: self.creation,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.close();
    }
}

/// A call on its way; dropping it forgets the call (a late reply is discarded).
#[derive(Debug)]
pub(crate) struct PendingCall {
    reply: oneshot::Receiver<Term>,
    key: Vec<u32>,
    shared: Arc<Shared>,
    what: String,
    node: String,
    started: Instant,
}

impl PendingCall {
    pub(crate) async fn wait(self, timeout: Duration) -> Result<Term, DistError> {
        let deadline = self.started + timeout;
        self.wait_until(deadline).await
    }

    /// Waits for the reply until `deadline` (shared by calls sent together).
    pub(crate) async fn wait_until(mut self, deadline: Instant) -> Result<Term, DistError> {
        self.reply_by(deadline).await
    }

    /// [`wait_until`](Self::wait_until) that keeps the call: cancel-safe, so
    /// it can race other work in a select and be waited for again.
    pub(crate) async fn reply_by(&mut self, deadline: Instant) -> Result<Term, DistError> {
        match tokio::time::timeout_at(deadline, &mut self.reply).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Err(DistError::Closed {
                node: self.node.clone(),
            }),
            Err(_) => Err(DistError::Timeout(format!(
                "{} on {} got no reply within {:?}",
                self.what,
                self.node,
                deadline.saturating_duration_since(self.started)
            ))),
        }
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.key);
    }
}

async fn read_loop(
    mut rx: Receiver<CheckedFrames<SharedStream>>,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Message>,
    events: mpsc::Sender<NodeEvent>,
    own_name: String,
    local_node: String,
) {
    let why = loop {
        match rx.recv().await {
            Ok(Message::Tick) => {
                // Answering every tick keeps us inside the node's net_ticktime
                // whatever its value; the node only ticks when it has sent
                // nothing else, and it hears from us on every call anyway.
                if commands.send(Message::Tick).is_err() {
                    break "the session was dropped".to_owned();
                }
            }
            Ok(message) => match relay::event_of(&message) {
                // Full: the reporter has a sync coming anyway (see EVENTS_QUEUED).
                Some(event) => {
                    let _ = events.try_send(event);
                }
                None => match rpc::reply_of(message, &own_name) {
                    Some((key, result)) => shared.complete(&key, result),
                    None => trace!("ignored a message that is no reply of ours"),
                },
            },
            Err(RecvError::Closed) => break "the node closed the connection".to_owned(),
            // The whole frame was read before decoding failed, so the stream is
            // still in step: skip the message (it cannot be a reply we understand).
            Err(e @ (RecvError::Decode(_) | RecvError::UnsupportedOp { .. })) => {
                debug!(local = %local_node, error = %e, "skipped an undecodable message");
            }
            Err(e) => break e.to_string(),
        }
    };
    debug!(local = %local_node, reason = %why, "connection to the local node ended");
    shared.close();
}

async fn write_loop(
    mut tx: Sender<CheckedFrames<SharedStream>>,
    mut queue: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
) {
    while let Some(message) = queue.recv().await {
        if let Err(e) = tx.send(message).await {
            debug!(error = %e, "sending to the local node failed");
            break;
        }
    }
    shared.close();
}

fn parse_name(name: &str) -> Result<NodeName, DistError> {
    name.parse().map_err(|e| DistError::InvalidName {
        name: name.to_owned(),
        reason: format!("{e}"),
    })
}

/// A node's host is usually an IP literal (beamup names nodes after their
/// address); a hostname goes through the system resolver.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, DistError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let unreachable = |reason: String| DistError::EpmdUnreachable {
        host: host.to_owned(),
        reason,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| unreachable(format!("cannot resolve the host: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(unreachable("the host resolves to no address".to_owned()));
    }
    Ok(addrs)
}

/// Asks epmd for the node's dist port; returns the epmd address that
/// answered and the port.
async fn lookup_port(
    node: &NodeName,
    epmd_addrs: &[SocketAddr],
) -> Result<(SocketAddr, u16), DistError> {
    let mut last_error = String::new();
    for &addr in epmd_addrs {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last_error = format!("{addr}: {e}");
                continue;
            }
        };
        let entry = EpmdClient::new(SharedStream::new(stream))
            .get_node(node.name())
            .await
            .map_err(|e| DistError::EpmdUnreachable {
                host: node.host().to_owned(),
                reason: format!("epmd at {addr} failed to answer: {e}"),
            })?;
        let Some(entry) = entry else {
            return Err(DistError::NotRegistered {
                node: node.to_string(),
            });
        };
        if entry.highest_version < LOWEST_DISTRIBUTION_PROTOCOL_VERSION
            || entry.lowest_version > HIGHEST_DISTRIBUTION_PROTOCOL_VERSION
        {
            return Err(DistError::Protocol(format!(
                "{node} speaks distribution versions {}..={}, beamup needs {LOWEST_DISTRIBUTION_PROTOCOL_VERSION} (OTP 23 or later)",
                entry.lowest_version, entry.highest_version
            )));
        }
        return Ok((addr, entry.port));
    }
    Err(DistError::EpmdUnreachable {
        host: node.host().to_owned(),
        reason: last_error,
    })
}

/// Which part of the handshake failed decides what an EOF means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// We sent our name and wait for the status.
    SendName,
    /// Challenge, our digest of the cookie, the node's acknowledgement.
    Challenge,
}

/// Generic over the stream so the fuzz targets (fuzz/) can feed it a peer's
/// bytes without a socket.
pub async fn handshake<S>(
    stream: S,
    me: LocalNode,
    cookie: &Secret,
    local_node: &str,
    own_name: &str,
) -> Result<(S, erl_dist::node::PeerNode), DistError>
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    let mut shake = ClientSideHandshake::new(stream, me, cookie.expose());
    let status = shake
        .execute_send_name(LOWEST_DISTRIBUTION_PROTOCOL_VERSION)
        .await
        .map_err(|e| classify_handshake(Phase::SendName, e, local_node, own_name))?;
    if status == HandshakeStatus::Alive {
        // The node still holds a connection under our name (a previous session
        // it has not noticed dying): answering `true` makes it drop that one.
        debug!(local = %local_node, "the node still had a connection from us; replacing it");
    }
    shake
        .execute_rest(true)
        .await
        .map_err(|e| classify_handshake(Phase::Challenge, e, local_node, own_name))
}

/// Turns an erl_dist handshake error into what the caller can act on.
///
/// OTP never says "bad cookie": it closes the socket after reading our
/// challenge reply. An EOF (or reset) in the challenge phase therefore means
/// the cookie; an EOF right after our name means the node refused the name.
fn classify_handshake(
    phase: Phase,
    error: HandshakeError,
    local_node: &str,
    own_name: &str,
) -> DistError {
    let refused = |reason: &str| DistError::Refused {
        node: local_node.to_owned(),
        own_name: own_name.to_owned(),
        reason: reason.to_owned(),
    };
    match error {
        HandshakeError::CookieMismatch => DistError::CookieRejected {
            node: local_node.to_owned(),
        },
        HandshakeError::Io(e) if is_hangup(&e) => match phase {
            Phase::Challenge => DistError::CookieRejected {
                node: local_node.to_owned(),
            },
            Phase::SendName => refused(
                "it closed the connection on seeing our name (long vs short names? \
                 net_kernel:allow/1? is it shutting down?)",
            ),
        },
        HandshakeError::NotAllowed => refused("it answered not_allowed"),
        HandshakeError::OngoingHandshake => {
            refused("it answered nok (it is connecting to us at the same time)")
        }
        HandshakeError::Io(e) => DistError::Io(format!(
            "handshake with {local_node}: {}",
            crate::untrusted::shown(&e.to_string())
        )),
        other => DistError::Protocol(format!(
            "handshake with {local_node}: {}",
            crate::untrusted::shown(&other.to_string())
        )),
    }
}

fn is_hangup(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}

/// A random creation (the node's incarnation), never one of the small values
/// OTP reserves for old-style 2-bit creations.
fn new_creation() -> u32 {
    let c = Creation::random().get();
    if c < 4 { c + 4 } else { c }
}

async fn with_timeout<F: Future>(
    limit: Duration,
    what: String,
    future: F,
) -> Result<F::Output, DistError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| DistError::Timeout(format!("{what} took longer than {limit:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::handshake::ServerSideHandshake;
    use std::io;
    use tokio::net::TcpListener;

    const LOCAL: &str = "a@127.0.0.1";
    const OWN: &str = "beamup-1@127.0.0.1";

    #[test]
    fn classify_handshake_table() {
        let eof = || HandshakeError::Io(io::ErrorKind::UnexpectedEof.into());
        let cases: Vec<(Phase, HandshakeError, &str)> = vec![
            (Phase::Challenge, eof(), "CookieRejected"),
            (
                Phase::Challenge,
                HandshakeError::Io(io::ErrorKind::ConnectionReset.into()),
                "CookieRejected",
            ),
            (
                Phase::Challenge,
                HandshakeError::CookieMismatch,
                "CookieRejected",
            ),
            (Phase::SendName, eof(), "Refused"),
            (Phase::SendName, HandshakeError::NotAllowed, "Refused"),
            (Phase::SendName, HandshakeError::OngoingHandshake, "Refused"),
            (
                Phase::SendName,
                HandshakeError::Io(io::ErrorKind::TimedOut.into()),
                "Io",
            ),
            (
                Phase::Challenge,
                HandshakeError::UnexpectedTag {
                    message: "CHALLENGE",
                    tag: b'x',
                },
                "Protocol",
            ),
        ];
        for (phase, error, want) in cases {
            let shown = format!("{phase:?} {error:?}");
            let got = classify_handshake(phase, error, LOCAL, OWN);
            let kind = format!("{got:?}");
            assert!(kind.starts_with(want), "{shown}: got {kind}");
        }
    }

    #[test]
    fn creation_avoids_reserved_values() {
        for _ in 0..1000 {
            assert!(new_creation() >= 4);
        }
    }

    #[tokio::test]
    async fn resolve_takes_ip_literals_as_they_are() {
        let v6 = resolve("::1", 4369).await.expect("v6 literal");
        assert_eq!(v6, vec!["[::1]:4369".parse().expect("addr")]);
        let v4 = resolve("127.0.0.1", 1).await.expect("v4 literal");
        assert_eq!(v4, vec!["127.0.0.1:1".parse().expect("addr")]);
    }

    /// A stand-in node on loopback that runs erl_dist's server-side handshake
    /// with its own cookie, so the client's cookie handling is tested without
    /// a VM (the real-VM tests live in tests/dist_local.rs).
    async fn fake_node(cookie: &'static str) -> (SocketAddr, JoinHandle<Result<(), String>>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let me = LocalNode::new(LOCAL.parse().map_err(|e| format!("{e}"))?, Creation::new(9));
            let mut shake = ServerSideHandshake::new(SharedStream::new(socket), me, cookie);
            shake.execute_recv_name().await.map_err(|e| e.to_string())?;
            shake
                .execute_rest(HandshakeStatus::Ok)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        (addr, task)
    }

    #[tokio::test]
    async fn handshake_with_the_right_cookie_succeeds() {
        let (addr, server) = fake_node("right").await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let me = LocalNode::new(OWN.parse().expect("name"), Creation::new(5));
        let got = handshake(
            SharedStream::new(stream),
            me,
            &Secret::new("right"),
            LOCAL,
            OWN,
        )
        .await;
        let (_, peer) = got.expect("handshake");
        assert_eq!(peer.name.to_string(), LOCAL);
        server.await.expect("join").expect("server side");
    }

    #[tokio::test]
    async fn handshake_with_a_wrong_cookie_is_cookie_rejected_and_never_shows_it() {
        let (addr, server) = fake_node("right").await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let me = LocalNode::new(OWN.parse().expect("name"), Creation::new(5));
        let cookie = Secret::new("wrong-cookie-value");
        let got = handshake(SharedStream::new(stream), me, &cookie, LOCAL, OWN).await;
        // The server fails on our digest and drops the socket, as OTP does.
        let server_result = server.await.expect("join");
        assert!(
            server_result.is_err(),
            "the fake node must reject the digest"
        );
        let err = got.expect_err("must fail");
        assert_eq!(
            err,
            DistError::CookieRejected {
                node: LOCAL.to_owned()
            }
        );
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("wrong-cookie-value"), "{shown}");
    }
}
