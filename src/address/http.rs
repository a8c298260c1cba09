//! Plain-HTTP GETs to metadata APIs (Rancher, ECS): short timeout, one retry on
//! a transport error, names resolved by hickory, reasons a person can act on.

use std::sync::Arc;
use std::time::Duration;

use crate::resolver::ReqwestResolver;

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
        let response = self
            .inner
            .get(url)
            .header("Accept", accept)
            .send()
            .await
            .map_err(|e| Failure::Transport(self.describe(url, &e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(format!("GET {url} answered HTTP {status}")));
        }
        response
            .text()
            .await
            .map_err(|e| Failure::Transport(self.describe(url, &e)))
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
