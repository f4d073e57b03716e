//! A small blocking HTTP/1.1 GET for the package hub's index and tarballs: `http://`
//! (tests serve a local hub) and `https://` through rustls with the web's root
//! certificates. Redirects are followed (at most five); a response is read whole.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting and each read may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The body of `url`, or why it could not be fetched.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..6 {
        match get_once(&url)? {
            Response::Body(body) => return Ok(body),
            Response::Redirect(to) => url = absolute(&url, &to),
        }
    }
    Err(format!("`{url}`: too many redirects"))
}

enum Response {
    Body(Vec<u8>),
    Redirect(String),
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

fn get_once(raw: &str) -> Result<Response, String> {
    let url = parse(raw)?;
    let fail = |e: std::io::Error| format!("`{raw}`: {e}");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host, url.port))
        .map_err(fail)?
        .next()
        .ok_or_else(|| format!("`{raw}`: the host has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(fail)?;
    tcp.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: etlm/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION")
    );
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
    reader.get_mut().write_all(request.as_bytes()).map_err(fail)?;
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
    if (300..400).contains(&code) {
        return location.map(Response::Redirect).ok_or_else(|| format!("`{raw}`: redirect without a location"));
    }
    let body = if chunked {
        read_chunked(&mut reader).map_err(fail)?
    } else {
        let mut body = Vec::with_capacity(length.unwrap_or(0));
        match length {
            Some(n) => reader.take(n as u64).read_to_end(&mut body).map_err(fail)?,
            None => reader.read_to_end(&mut body).map_err(fail)?,
        };
        body
    };
    if code != 200 {
        return Err(format!("`{raw}` answered HTTP {code}"));
    }
    Ok(Response::Body(body))
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
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
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
}
