//! `rancher[:BASE_URL]`: Rancher 1.x metadata service. The plain-text paths
//! `/latest/self/container/primary_ip` and `/latest/self/service/name` are what
//! rancher_boot.sh scripts fetch with wget.

use std::net::IpAddr;

use super::http::Client;
use super::{Context, parse_address, unusable};

pub async fn lookup(
    base: &str,
    ctx: &Context<'_>,
) -> Result<(IpAddr, Vec<(String, String)>), String> {
    let client = Client::new(ctx.metadata_timeout)?;
    let url = format!("{base}/latest/self/container/primary_ip");
    let body = client.get(&url, "text/plain").await?;
    let address = parse_address(&body).ok_or_else(|| {
        format!(
            "GET {url} answered `{}`, which is not an IP address",
            snippet(&body)
        )
    })?;
    if let Some(why) = unusable(address, ctx.family, false) {
        return Err(format!("GET {url}: {why}"));
    }
    // The service name is a bonus for templates (`--query ${RANCHER_SERVICE_NAME}`):
    // its absence is worth a warning, not a failure of the address.
    let name_url = format!("{base}/latest/self/service/name");
    let mut extras = Vec::new();
    match client.get(&name_url, "text/plain").await {
        Ok(name) if !name.trim().is_empty() => {
            extras.push(("RANCHER_SERVICE_NAME".to_string(), name.trim().to_string()));
        }
        Ok(_) => tracing::warn!(url = %name_url, "Rancher metadata gave an empty service name"),
        Err(reason) => tracing::warn!(%reason, "no Rancher service name for templates"),
    }
    Ok((address, extras))
}

pub(super) fn snippet(body: &str) -> String {
    let one_line: String = body
        .trim()
        .chars()
        .take(60)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.trim().chars().count() > 60 {
        format!("{one_line}...")
    } else {
        one_line
    }
}
