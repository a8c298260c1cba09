//! `env:VAR`: an address the platform hands the container (POD_IP from the
//! Kubernetes downward API, FLY_PRIVATE_IP, RENDER_INTERNAL_IP, ...).

use std::net::IpAddr;

use super::{Context, parse_address, unusable};

pub fn lookup(var: &str, ctx: &Context<'_>) -> Result<IpAddr, String> {
    let value = ctx
        .env
        .get(var)
        .ok_or_else(|| format!("{var} is not set"))?;
    if value.trim().is_empty() {
        return Err(format!("{var} is set but empty"));
    }
    let address = parse_address(value).ok_or_else(|| {
        format!(
            "{var}=`{}` is not an IP address",
            crate::untrusted::shown(value)
        )
    })?;
    // The user named this variable, so a loopback address is taken (a laptop
    // setup); `auto` never offers one on its own.
    if let Some(why) = unusable(address, ctx.family, true) {
        return Err(format!("{var}: {why}"));
    }
    if address.is_loopback() {
        tracing::warn!(variable = var, %address, "own address is loopback: only nodes on this host can reach it");
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::address::IpFamily;

    #[test]
    fn table() {
        let env: HashMap<String, String> = [
            ("POD_IP", "10.42.0.7"),
            ("FLY_PRIVATE_IP", "fdaa:0:1::3"),
            ("EMPTY", " "),
            ("JUNK", "not-an-ip"),
            ("LL", "169.254.10.1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = |family| Context {
            env: &env,
            family,
            metadata_timeout: Duration::from_secs(1),
            query: None,
            dns_server: None,
        };
        let any = ctx(IpFamily::Any);
        assert_eq!(lookup("POD_IP", &any).unwrap().to_string(), "10.42.0.7");
        assert_eq!(
            lookup("FLY_PRIVATE_IP", &any).unwrap().to_string(),
            "fdaa:0:1::3"
        );
        for (var, want) in [
            ("NOPE", "NOPE is not set"),
            ("EMPTY", "set but empty"),
            ("JUNK", "`not-an-ip` is not an IP address"),
            ("LL", "link-local"),
        ] {
            let e = lookup(var, &any).unwrap_err();
            assert!(e.contains(want), "{var}: {e}");
        }
        assert!(
            lookup("POD_IP", &ctx(IpFamily::V6))
                .unwrap_err()
                .contains("family")
        );
    }
}
