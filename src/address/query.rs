//! `query`: the local address that the discovery query itself returns. On
//! Swarm and Compose the container may sit on several networks (ingress,
//! overlay, docker_gwbridge); the one its peers will dial is the one DNS
//! gives them for the service, so pick the local address found in that
//! answer. Docker registers a container in its embedded DNS when it attaches
//! it to the network, before the entrypoint runs.

use std::net::IpAddr;
use std::path::Path;

use super::interface::local_addresses;
use super::{Context, pick};
use crate::resolver::{Hosts, RESOLV_CONF, build};

pub async fn lookup(ctx: &Context<'_>) -> Result<IpAddr, String> {
    let query = ctx
        .query
        .as_deref()
        .ok_or("no discovery query (give --query or BEAMUP_SERVICE with a platform)")?;
    let built = build(
        Path::new(RESOLV_CONF),
        ctx.dns_server,
        ctx.metadata_timeout,
        1,
        Hosts::Ignore,
    )
    .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
    let answer = built
        .resolver
        .lookup_ip(query)
        .await
        .map_err(|e| format!("`{query}` does not resolve: {e}"))?;
    let answers: Vec<IpAddr> = answer.iter().collect();
    let local: Vec<IpAddr> = local_addresses()?.into_iter().map(|a| a.address).collect();
    let mine: Vec<IpAddr> = answers
        .iter()
        .copied()
        .filter(|a| local.contains(a))
        .collect();
    pick(&mine, ctx.family).ok_or_else(|| {
        let shown: Vec<String> = answers.iter().map(|a| a.to_string()).collect();
        format!(
            "none of `{query}`'s addresses ({}) is on this host",
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            }
        )
    })
}
