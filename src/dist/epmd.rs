//! epmd's NAMES_REQ (110): every name registered with one epmd and its
//! distribution port (what `epmd -names` prints).
//!
//! erl_dist 0.8 has `EpmdClient::get_names`, but it reads the answer to the
//! end without a bound; the epmd asked may be any host the discovery answer
//! named, so this reads at most [`NAMES_MAX_BYTES`] and skips lines it does not
//! understand.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::DistError;

/// epmd's request tag for "all registered names" (erts: epmd.h, EPMD_NAMES_REQ).
const NAMES_REQ: u8 = 110;
/// Far more than any real epmd sends (one ~30-byte line per node on the host).
pub const NAMES_MAX_BYTES: u64 = 64 * 1024;
/// Node name parts are at most 255 bytes (OTP's MAXSYMLEN for the name).
const NAME_MAX_BYTES: usize = 255;

/// One node registered with an epmd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The name part (`demo` of `demo@10.0.0.1`).
    pub name: String,
    /// Its distribution port.
    pub port: u16,
}

/// Asks the epmd at `addr` for every registered name, bounded by `timeout`
/// (connecting and reading together).
///
/// A refused connection comes back as [`DistError::EpmdUnreachable`]
/// (nothing listens), an unreachable host as [`DistError::Io`], silence as
/// [`DistError::Timeout`] (a host that is down or a firewall that drops), an
/// answer that is not epmd's as [`DistError::Protocol`].
pub async fn names(addr: SocketAddr, timeout: Duration) -> Result<Vec<Registered>, DistError> {
    let unreachable = |reason: String| DistError::EpmdUnreachable {
        host: addr.ip().to_string(),
        reason,
    };
    // One deadline for connecting and reading together.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(DistError::Timeout(format!(
                "epmd at {addr}: no answer within {timeout:?}"
            )));
        }
        // Refused: the host answers, nothing listens on the port.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(unreachable(e.to_string()));
        }
        // The host itself cannot be reached (no route, ARP gave up).
        Ok(Err(e)) => return Err(DistError::Io(format!("epmd at {addr}: {e}"))),
        Ok(Ok(stream)) => stream,
    };
    let exchange = async {
        // Length 1 (big-endian u16), then the tag.
        stream.write_all(&[0, 1, NAMES_REQ]).await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(NAMES_MAX_BYTES + 1)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| {
            DistError::Timeout(format!("epmd at {addr} did not answer within {timeout:?}"))
        })?
        .map_err(|e| DistError::Io(format!("asking epmd at {addr} for its names: {e}")))?;
    parse_names(&answer).map_err(|e| DistError::Protocol(format!("epmd at {addr}: {e}")))
}

/// The answer: epmd's own port (4 bytes), then `name <name> at port <port>\n`
/// per node until the connection closes.
fn parse_names(answer: &[u8]) -> Result<Vec<Registered>, String> {
    if answer.len() as u64 > NAMES_MAX_BYTES {
        return Err(format!(
            "the answer is longer than {NAMES_MAX_BYTES} bytes: not an epmd"
        ));
    }
    let Some(text) = answer.get(4..) else {
        return Err(format!(
            "the answer has {} bytes, fewer than epmd's 4-byte header: not an epmd",
            answer.len()
        ));
    };
    Ok(String::from_utf8_lossy(text)
        .lines()
        .filter_map(|line| {
            let (name, port) = line.strip_prefix("name ")?.rsplit_once(" at port ")?;
            let name_ok = !name.is_empty()
                && name.len() <= NAME_MAX_BYTES
                && !name.chars().any(char::is_control);
            name_ok.then_some(())?;
            Some(Registered {
                name: name.to_string(),
                port: port.trim().parse().ok()?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn answer(text: &str) -> Vec<u8> {
        let mut bytes = 4369u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    type Case = (Vec<u8>, Result<Vec<Registered>, &'static str>);

    #[test]
    fn parse_names_table() {
        let reg = |name: &str, port| Registered {
            name: name.into(),
            port,
        };
        // (answer, expected: Err = needle of the message)
        let cases: Vec<Case> = vec![
            (answer(""), Ok(vec![])),
            (
                answer("name demo at port 40000\nname rpc-1a-demo at port 40001\n"),
                Ok(vec![reg("demo", 40000), reg("rpc-1a-demo", 40001)]),
            ),
            // Garbage lines are skipped, the rest kept.
            (
                answer("hello\nname x at port notaport\nname \x07 at port 1\nname ok at port 7"),
                Ok(vec![reg("ok", 7)]),
            ),
            (
                answer(&format!("name {} at port 1\n", "n".repeat(256))),
                Ok(vec![]),
            ),
            (vec![0, 0], Err("fewer than epmd's 4-byte header")),
            (vec![b'x'; NAMES_MAX_BYTES as usize + 1], Err("longer than")),
        ];
        for (bytes, want) in cases {
            let got = parse_names(&bytes);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e}"),
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
    }

    /// A stand-in epmd on loopback that checks the request and sends `reply`.
    async fn fake_epmd(reply: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 3];
            socket.read_exact(&mut request).await.expect("request");
            assert_eq!(request, [0, 1, NAMES_REQ]);
            // A hostile peer may send more than it should: the client stops reading.
            let _ = socket.write_all(&reply).await;
        });
        addr
    }

    #[tokio::test]
    async fn names_over_loopback() {
        let addr = fake_epmd(answer("name demo at port 4242\n")).await;
        let got = names(addr, Duration::from_secs(5)).await.expect("names");
        assert_eq!(
            got,
            vec![Registered {
                name: "demo".into(),
                port: 4242
            }]
        );

        let addr = fake_epmd(vec![b'n'; 200_000]).await;
        let err = names(addr, Duration::from_secs(5))
            .await
            .expect_err("too long");
        assert!(matches!(err, DistError::Protocol(_)), "{err:?}");

        // Nothing listening: unreachable, saying so.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let err = names(closed, Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(
            matches!(&err, DistError::EpmdUnreachable { reason, .. } if reason.contains("refused")),
            "{err:?}"
        );
    }
}
