//! Just enough HTTP/1.1 to ask tailscaled one question over its unix socket: one `GET`, the
//! reply read under a deadline and a size cap, its body framed by `Content-Length`, `chunked`
//! transfer coding or the end of the connection. ureq speaks TCP only, and the LocalAPI is a
//! unix socket; a request this small does not justify another HTTP stack.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::TailscaledError;

/// The largest reply read (a status without peers is a few KB).
pub const MAX_REPLY: usize = 1 << 20;

/// The `Host` tailscale's own local client sends: tailscaled refuses other names (a guard
/// against DNS rebinding), so the client names the socket, not a machine.
pub const HOST: &str = "local-tailscaled.sock";

/// The capability version sent in `Tailscale-Cap`, as tailscale's local client does with its
/// own (tailscaled reads it to shape some replies; the status reply does not depend on it).
pub const CAPABILITY_VERSION: u32 = 106;

/// A reply: status code and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// `GET path` on the socket, everything done within `timeout`.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<Reply, TailscaledError> {
    let deadline = Instant::now() + timeout;
    let io = |e: std::io::Error| TailscaledError::io(socket, e);
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: tskeyctl/{}\r\n\
Tailscale-Cap: {CAPABILITY_VERSION}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let raw = read_reply(&mut stream, deadline, socket)?;
    parse(&raw, true).ok_or_else(|| TailscaledError::Malformed {
        socket: socket.to_path_buf(),
        what: "not an HTTP/1.1 reply",
    })
}

/// Reads until the peer closes or a complete reply is in (whichever comes first), under the
/// deadline and the size cap.
fn read_reply(
    stream: &mut UnixStream,
    deadline: Instant,
    socket: &Path,
) -> Result<Vec<u8>, TailscaledError> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TailscaledError::Timeout {
                socket: socket.to_path_buf(),
            });
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| TailscaledError::io(socket, e))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TailscaledError::io(socket, e)),
        };
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_REPLY {
            return Err(TailscaledError::Malformed {
                socket: socket.to_path_buf(),
                what: "reply larger than 1 MiB",
            });
        }
        if parse(&raw, false).is_some() {
            return Ok(raw);
        }
    }
}

/// The reply in `raw` if it is complete: status line, headers, and a body as long as its framing
/// says; without `Content-Length` or chunking the body runs to the end of the connection, so it
/// is complete only at `eof`.
fn parse(raw: &[u8], eof: bool) -> Option<Reply> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let rest = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().ok()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)?.to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Reply { status, body })
}

/// The body of a complete `chunked` encoding (`None` while incomplete or malformed).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        if rest.get(size..size + 2)? != b"\r\n" {
            return None;
        }
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_framing() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false).expect("complete");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}", true).is_none());
        let r = parse(b"HTTP/1.1 200 OK\r\n\r\n{}", true).expect("to the end");
        assert_eq!(r.body, b"{}");
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n{}", false).is_none());
    }

    #[test]
    fn chunked_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse(raw, false).expect("complete").body, b"{\"a\":1}");
        assert!(parse(&raw[..raw.len() - 7], true).is_none());
        assert!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                true
            )
            .is_none()
        );
    }

    #[test]
    fn not_http() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_none());
        assert!(parse(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", true).is_none());
    }
}
