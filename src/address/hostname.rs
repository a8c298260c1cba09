//! `hostname`: the container's own hostname resolved through /etc/hosts, then
//! DNS — what `hostname -i` does, without glibc. Docker and Kubernetes write
//! the container's address for its hostname into /etc/hosts.

use std::net::IpAddr;

use super::{Context, is_link_local, pick};

pub async fn lookup(ctx: &Context<'_>) -> Result<IpAddr, String> {
    let name = nix::unistd::gethostname()
        .map_err(|e| format!("cannot read the hostname: {e}"))?
        .to_string_lossy()
        .into_owned();
    if name.is_empty() {
        return Err("the hostname is empty".into());
    }
    let resolver = crate::resolver::for_lookups(ctx.metadata_timeout).map_err(|e| e.to_string())?;
    let lookup = resolver
        .lookup_ip(name.as_str())
        .await
        .map_err(|e| format!("hostname `{name}` does not resolve: {e}"))?;
    let candidates: Vec<IpAddr> = lookup.iter().collect();
    pick(&candidates, ctx.family).ok_or_else(|| {
        let all: Vec<String> = candidates.iter().map(|a| a.to_string()).collect();
        let why = if candidates
            .iter()
            .all(|a| a.is_loopback() || is_link_local(*a))
        {
            "only loopback or link-local addresses"
        } else {
            "no address of the wanted family"
        };
        format!("hostname `{name}` resolves to {} ({why})", all.join(", "))
    })
}
