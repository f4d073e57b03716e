//! A small blocking HTTP/1.1 client: `GET` for the package hub's index and tarballs
//! (redirects followed, at most five) and `POST` for OpenLineage events. `http://`
//! (tests serve a local server) and `https://` through rustls with the web's root
//! certificates; a response is read whole. Every connect, write and read has a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting and each read of a `GET` may take.
const GET_TIMEOUT: Duration = Duration::from_secs(60);

/// The body of `url`, or why it could not be fetched.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..6 {
        let request = Request { method: "GET", url: &url, headers: &[], body: &[], timeout: GET_TIMEOUT };
        let response = send(&request)?;
        match (response.code, response.location) {
            (300..400, Some(to)) => url = absolute(&url, &to),
            (300..400, None) => return Err(format!("`{url}`: redirect without a location")),
            (200, _) => return Ok(response.body),
            (code, _) => return Err(format!("`{url}` answered HTTP {code}")),
        }
    }
    Err(format!("`{url}`: too many redirects"))
}

/// Posts `body` to `url` with the extra `headers` (name, value); `Ok` with the status
/// code of any answer, `Err` when there was none within `timeout` (per step: connect,
/// write, each read). An error names the URL, never a header's value.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8], timeout: Duration) -> Result<u16, String> {
    send(&Request { method: "POST", url, headers, body, timeout }).map(|r| r.code)
}

struct Request<'a> {
    method: &'static str,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    timeout: Duration,
}

struct Response {
    code: u16,
    location: Option<String>,
    body: Vec<u8>,
}

struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse(url: &str) -> Result<Url<'_>, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("`{url}` has a bad port"))?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    Ok(Url { tls, host, port, path })
}

/// `to` (a Location header) made absolute against `from`.
fn absolute(from: &str, to: &str) -> String {
    if to.contains("://") {
        return to.to_string();
    }
    let scheme_end = from.find("://").map_or(0, |i| i + 3);
    let host_end = from[scheme_end..].find('/').map_or(from.len(), |i| scheme_end + i);
    format!("{}{}", &from[..host_end], to)
}

fn send(request: &Request) -> Result<Response, String> {
    let raw = request.url;
    let url = parse(raw)?;
    let fail = |e: std::io::Error| format!("`{raw}`: {e}");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host, url.port))
        .map_err(fail)?
        .next()
        .ok_or_else(|| format!("`{raw}`: the host has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, request.timeout).map_err(fail)?;
    tcp.set_read_timeout(Some(request.timeout)).map_err(fail)?;
    tcp.set_write_timeout(Some(request.timeout)).map_err(fail)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: etlm/{}\r\nAccept: */*\r\nConnection: close\r\n",
        request.method,
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if request.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    let stream: Box<dyn ReadWrite> = if url.tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(url.host.to_string()).map_err(|e| format!("`{raw}`: {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("`{raw}`: {e}"))?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(head.as_bytes()).map_err(fail)?;
    reader.get_mut().write_all(request.body).map_err(fail)?;
    let mut status = String::new();
    reader.read_line(&mut status).map_err(fail)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("`{raw}`: not an HTTP response (`{}`)", status.trim()))?;
    let (mut length, mut chunked, mut location) = (None, false, None);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(fail)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "location" => location = Some(value.to_string()),
                _ => {}
            }
        }
    }
    let body = if chunked {
        read_chunked(&mut reader).map_err(fail)?
    } else {
        // The capacity is a hint: a server may announce any length.
        let mut body = Vec::with_capacity(length.unwrap_or(0).min(1 << 20));
        match length {
            Some(n) => reader.take(n as u64).read_to_end(&mut body).map_err(fail)?,
            None => reader.read_to_end(&mut body).map_err(fail)?,
        };
        body
    };
    Ok(Response { code, location, body })
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            return Ok(body);
        }
        // Read as sent, not allocated ahead: a chunk size is whatever the server wrote.
        let read = reader.by_ref().take(size as u64).read_to_end(&mut body)?;
        if read < size {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the body ends inside a chunk"));
        }
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_host() {
        assert_eq!(absolute("https://hub.example/api/v1/x.json", "/y.tgz"), "https://hub.example/y.tgz");
        assert_eq!(absolute("http://a/b", "https://c/d"), "https://c/d");
        let url = parse("http://127.0.0.1:8080/api/v1/index.json").unwrap();
        assert_eq!((url.tls, url.host, url.port, url.path), (false, "127.0.0.1", 8080, "/api/v1/index.json"));
        assert!(parse("ftp://x").is_err());
    }

    // Regression: #18, a chunk size near `usize::MAX` panicked allocating the body.
    #[test]
    fn chunked_bodies_are_read_as_sent() {
        let body = read_chunked(&mut &b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"[..]).unwrap();
        assert_eq!(body, b"abcde");
        assert!(read_chunked(&mut &b"ffffffffffffffff\r\nabc"[..]).is_err());
        assert!(read_chunked(&mut &b"5\r\nab"[..]).is_err());
    }
}
