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
    let name_url = format!("{base}/latest/self/service/name");
    let name = service_name(&name_url, client.get(&name_url, "text/plain").await);
    Ok((address, vec![("RANCHER_SERVICE_NAME".to_string(), name)]))
}

/// The service name is a bonus for templates (`--query ${RANCHER_SERVICE_NAME}`):
/// when it cannot be read, or is not a DNS name (it lands in the query and
/// may land in a vm.args line), it is exported empty with a warning, so the
/// node boots without discovery instead of crash-looping on the query.
fn service_name(url: &str, answer: Result<String, String>) -> String {
    let reason = match answer {
        Ok(name) if crate::naming::is_dns_name(name.trim()) => return name.trim().to_string(),
        Ok(name) if name.trim().is_empty() => "it is empty".to_string(),
        Ok(name) => format!(
            "`{}` is not a DNS name ({})",
            snippet(&name),
            crate::naming::DNS_NAME_RULE
        ),
        Err(reason) => reason,
    };
    tracing::warn!(
        %url,
        "no Rancher service name ({reason}): RANCHER_SERVICE_NAME is empty, so a query \
         naming it finds no peers; give --query or BEAMUP_SERVICE"
    );
    String::new()
}

/// A one-line piece of an answer, for a message.
fn snippet(body: &str) -> String {
    crate::untrusted::shown_max(body.trim(), 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_checked() {
        let long = "a".repeat(254);
        // (answer, exported name)
        let table: [(Result<&str, &str>, &str); 7] = [
            (Ok("web\n"), "web"),
            (Ok("my-stack_web"), "my-stack_web"),
            (Ok(""), ""),
            (Ok("web\n-eval 'os:cmd(\"id\")'"), ""),
            (Ok("we\0b"), ""),
            (Ok(&long), ""),
            (Err("GET x answered HTTP 404"), ""),
        ];
        for (answer, want) in table {
            let answer = answer.map(str::to_string).map_err(str::to_string);
            assert_eq!(service_name("u", answer.clone()), want, "{answer:?}");
        }
    }
}
