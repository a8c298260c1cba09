//! A minimal Erlang distribution client (a hidden node) over erl_dist: enough
//! to ask the local release node for `erlang:nodes/0` and to run
//! `net_kernel:connect_node/1` / `erlang:disconnect_node/1` on it.
