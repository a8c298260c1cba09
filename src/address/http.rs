//! Plain-HTTP GETs to metadata APIs (Rancher, ECS): short timeout, one retry on
//! a transport error, names resolved by hickory, reasons a person can act on.
//! What the network answers is hostile until checked: no redirect is followed
//! (a metadata API never sends one; following it would reach whatever host it
//! names), and a body past [`MAX_BODY`] is an error, not memory.

use std::sync::Arc;
use std::time::Duration;

use crate::resolver::ReqwestResolver;

/// The largest metadata answer read: Rancher's plain-text values are a few
/// bytes, ECS task metadata a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// Only `http://`: beamup has no TLS built in (it would double the static
/// binary), and the metadata APIs it reads are plain HTTP on a link-local or
/// task-local address.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") {
        Ok(())
    } else if url.starts_with("https://") {
        Err(format!(
            "`{url}` is https://, but beamup has no TLS built in: use the metadata API's \
             plain http:// address"
        ))
    } else {
        Err(format!("`{url}` is not an http:// URL"))
    }
}

pub struct Client {
    inner: reqwest::Client,
    timeout: Duration,
}

impl Client {
    pub fn new(timeout: Duration) -> Result<Client, String> {
        let resolver = crate::resolver::for_lookups(timeout).map_err(|e| e.to_string())?;
        let inner = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(ReqwestResolver(Arc::new(resolver))))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client { inner, timeout })
    }

    /// GET with `accept`; the body as text. Retries once when the server could
    /// not be reached or did not answer in time (a metadata service that is
    /// still starting); never retries an HTTP error status.
    pub async fn get(&self, url: &str, accept: &str) -> Result<String, String> {
        match self.get_once(url, accept).await {
            Err(Failure::Transport(first)) => {
                tracing::debug!(%url, reason = %first, "retrying once");
                match self.get_once(url, accept).await {
                    Ok(body) => Ok(body),
                    Err(Failure::Transport(e) | Failure::Status(e)) => Err(e),
                }
            }
            Err(Failure::Status(e)) => Err(e),
            Ok(body) => Ok(body),
        }
    }

    async fn get_once(&self, url: &str, accept: &str) -> Result<String, Failure> {
        check_url(url).map_err(Failure::Status)?;
        let mut response = self
            .inner
            .get(url)
            .header("Accept", accept)
            .send()
            .await
            .map_err(|e| Failure::Transport(self.describe(url, &e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Failure::Status(format!(
                "GET {url} answered HTTP {status} (a redirect), which beamup does not follow: \
                 give the metadata API's final URL"
            )));
        }
        if !status.is_success() {
            return Err(Failure::Status(format!("GET {url} answered HTTP {status}")));
        }
        let too_large = || {
            Failure::Status(format!(
                "GET {url}: the answer is larger than {} KiB, which no metadata value needs",
                MAX_BODY / 1024
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        // Read chunk by chunk: a server may lie about or omit the length.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Transport(self.describe(url, &e)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map_err(|_| Failure::Status(format!("GET {url}: the answer is not UTF-8 text")))
    }

    fn describe(&self, url: &str, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("GET {url}: no answer within {:?}", self.timeout);
        }
        // reqwest hides the io error kind behind its chain: walk it for a
        // message a person can act on ("Connection refused").
        let mut cause = String::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        if e.is_connect() {
            return format!("GET {url}: cannot connect ({cause})");
        }
        format!("GET {url}: {e} ({cause})")
    }
}

enum Failure {
    Transport(String),
    Status(String),
}
