//! `ecs[:URL]`: AWS ECS task metadata endpoint v4 (JSON). The container's
//! address is `Networks[0].IPv4Addresses[0]` (awsvpc and bridge modes alike).

use std::collections::HashMap;
use std::net::IpAddr;

use super::http::Client;
use super::{Context, parse_address, unusable};

const VARS: [&str; 2] = [
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
];

pub fn configured(env: &HashMap<String, String>) -> bool {
    VARS.iter().any(|v| env.contains_key(*v))
}

pub async fn lookup(url: Option<&str>, ctx: &Context<'_>) -> Result<IpAddr, String> {
    let base = match url {
        Some(u) => u.to_string(),
        None => VARS
            .iter()
            .find_map(|v| ctx.env.get(*v))
            .ok_or("neither ECS_CONTAINER_METADATA_URI_V4 nor ECS_CONTAINER_METADATA_URI is set")?
            .trim_end_matches('/')
            .to_string(),
    };
    let client = Client::new(ctx.metadata_timeout)?;
    let body = client.get(&base, "application/json").await?;
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
        format!(
            "GET {base} answered `{}`, which is not JSON ({e})",
            crate::untrusted::shown_max(body.trim(), 60)
        )
    })?;
    let first = json
        .pointer("/Networks/0/IPv4Addresses/0")
        .or_else(|| json.pointer("/Networks/0/IPv6Addresses/0"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("GET {base}: the JSON has no Networks[0].IPv4Addresses[0]"))?;
    let address = parse_address(first).ok_or_else(|| {
        format!(
            "GET {base}: `{}` is not an IP address",
            crate::untrusted::shown(first)
        )
    })?;
    if let Some(why) = unusable(address, ctx.family, false) {
        return Err(format!("GET {base}: {why}"));
    }
    Ok(address)
}
