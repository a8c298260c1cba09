//! A minimal Erlang distribution client (a hidden node) over erl_dist: enough
//! to ask the local release node for `erlang:nodes/0` and to run
//! `net_kernel:connect_node/1` / `erlang:disconnect_node/1` on it.
//!
//! - [`Session`]: one live connection to the local node (epmd lookup, handshake,
//!   a background task that answers ticks and routes replies to callers).
//! - `epmd`, `frames`, `stream`, `rpc`: the wire (epmd requests, checked
//!   frames, the socket adapter, rex calls and their replies).
//! - [`RegistrationWatch`]: epmd's answers to registrations seen on the
//!   loopback interface as they pass, for a reporter waiting for its VM.
//!
//! This is the protocol only. When to connect and to whom (the mesh policy)
//! lives with the component that decides it: `crate::reporter::mesh`.
//! - the relay (`relay.rs`): a process started in the local node with stdlib
//!   only that forwards nodeup/nodedown to the session as [`NodeEvent`]s.
//!
//! The calls go through `rex`, the rpc server every distributed node runs:
//! `{'$gen_call', {Pid, Ref}, {call, M, F, Args, user}}` sent to the registered
//! name `rex` runs `M:F(Args)` and comes back as `{Ref, Result}`
//! (kernel's `rpc.erl`, `handle_call({call, ...})`).

pub mod epmd;
mod frames;
mod registrations;
mod relay;
mod rpc;
mod session;
mod stream;

/// The term types of [`Session::call`] (erl_dist's re-exports of eetf, so
/// callers never depend on a second eetf version).
pub use erl_dist::term::{Atom, FixInteger, List, Term, Tuple};
pub use registrations::RegistrationWatch;
#[cfg(test)]
pub(crate) use registrations::{ALIVE2_X_RESP, EpmdStandIn};
pub use relay::NodeEvent;
pub(crate) use relay::start as start_relay;
pub(crate) use rpc::{atom, decode_bool};
pub(crate) use session::{EVENTS_QUEUED, PendingCall};
pub use session::{Session, SessionOptions};

/// The functions that read what the local node sends (handshake replies, rex
/// replies and their results), reachable without a socket for the fuzz
/// targets in fuzz/. Not an API: nothing else should call them directly.
#[doc(hidden)]
pub mod peer_input {
    pub use super::frames::CheckedFrames;
    pub use super::rpc::{check_badrpc, decode_bool, decode_nodes, reply_of};
    pub use super::session::handshake;
}

/// Why talking to the local node failed; the reporter branches on the kind.
///
/// No variant ever carries the cookie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    /// epmd answered but has no such node: the VM is still booting (or runs
    /// under another name). Retry quietly.
    #[error(
        "node {node} is not registered with epmd yet (is the VM still booting, or named differently?)"
    )]
    NotRegistered { node: String },

    /// Nothing answered on the epmd port of the node's host. Usually the VM has
    /// not started epmd yet; otherwise the host part of the node name is wrong.
    #[error(
        "cannot reach epmd on {host}: {reason} (has the VM started? is the host part of the node name right?)"
    )]
    EpmdUnreachable { host: String, reason: String },

    /// The node closed the connection after our challenge reply, which is how
    /// OTP says "wrong cookie".
    #[error(
        "node {node} rejected the cookie: beamup and the release must use the same cookie \
         (RELEASE_COOKIE / --cookie-file)"
    )]
    CookieRejected { node: String },

    /// The node refused the connection before the cookie was checked, e.g. our
    /// name does not fit its naming mode (long vs short names) or
    /// `net_kernel:allow/1` excludes it.
    #[error("node {node} refused the connection from {own_name}: {reason}")]
    Refused {
        node: String,
        own_name: String,
        reason: String,
    },

    /// A node name that cannot be used (no `@`, empty parts, too long).
    #[error("invalid node name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    /// The connection to the local node is gone (the node stopped, or dropped
    /// us after missed ticks). The caller reconnects.
    #[error("the connection to node {node} is closed")]
    Closed { node: String },

    #[error("I/O error: {0}")]
    Io(String),

    /// The peer sent something this client does not understand.
    #[error("distribution protocol error: {0}")]
    Protocol(String),

    #[error("timed out: {0}")]
    Timeout(String),

    /// The remote call ran but failed there (`{badrpc, Reason}`).
    #[error("remote call failed: {0}")]
    Rpc(String),
}
