//! The syslog sink: RFC 5424 messages over TCP or TLS (RFC 5425), framed
//! by octet counting (RFC 6587 §3.4.1), reconnecting with backoff.

use super::*;

/// A TLS client config trusting `ca` (PEM) or the system's roots, and the
/// name to check the server's certificate against.
pub(super) fn tls_connector(
    ca: Option<&[u8]>,
    host: &str,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    String,
> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(pem) => {
            let mut n = 0;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("ca_file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file: a certificate rustls cannot use: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err("ca_file holds no PEM certificate".into());
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err("no system root certificates found: set ca_file".into());
            }
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

/// The host name for the syslog header: the system's, as printable ASCII
/// (RFC 5424 PRINTUSASCII, at most 255), or `-`.
pub(super) fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

/// One RFC 5424 message with octet-counting framing (RFC 6587 §3.4.1).
pub fn syslog_frame(
    facility: u8,
    kind: LineKind,
    time: OffsetDateTime,
    hostname: &str,
    procid: &str,
    json: &str,
) -> String {
    let pri = u16::from(facility) * 8 + u16::from(kind.severity());
    let ts = time
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_else(|_| "-".into());
    let msg = format!(
        "<{pri}>1 {ts} {hostname} fedgate {procid} {} - {json}",
        kind.msgid()
    );
    format!("{} {msg}", msg.len())
}

pub(super) enum Conn {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &tokio::net::TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Whether the receiver closed the connection (a syslog receiver never
    /// sends: a readable end of stream is its close).
    fn closed(&self) -> bool {
        use futures_util::FutureExt;
        let mut buf = [0u8; 1];
        matches!(
            self.tcp().peek(&mut buf).now_or_never(),
            Some(Ok(0) | Err(_))
        )
    }
}

pub(super) struct Syslog {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    pub(super) facility: u8,
    pub(super) hostname: String,
    pub(super) procid: String,
    pub(super) timeout: Duration,
    pub(super) backoff: Backoff,
    pub(super) conn: Option<Conn>,
}

/// Lines written to a syslog connection at once.
const SYSLOG_BATCH: usize = 256;

impl Syslog {
    async fn connect(&self) -> Result<Conn, String> {
        let tcp = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Tcp(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS: {e}"))?;
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }

    pub(super) async fn run(mut self, shared: Arc<Shared>) {
        loop {
            shared.wait_for_line().await;
            if self.conn.as_ref().is_some_and(Conn::closed) {
                self.conn = None;
            }
            if self.conn.is_none() {
                match self.connect().await {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        self.failed(&shared, &e).await;
                        continue;
                    }
                }
            }
            let items = shared.front(SYSLOG_BATCH);
            let mut bytes = String::new();
            for i in &items {
                bytes.push_str(&syslog_frame(
                    self.facility,
                    i.kind,
                    i.time,
                    &self.hostname,
                    &self.procid,
                    &i.text,
                ));
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            match tokio::time::timeout(self.timeout, conn.send(bytes.as_bytes())).await {
                Ok(Ok(())) => {
                    shared.sent.fetch_add(items.len() as u64, Relaxed);
                    shared.pop(items.len());
                    shared.set_up(true);
                    self.backoff.reset();
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    self.failed(&shared, &format!("write: {e}")).await;
                }
                Err(_) => {
                    self.conn = None;
                    self.failed(&shared, "write timed out").await;
                }
            }
        }
    }

    async fn failed(&mut self, shared: &Shared, error: &str) {
        shared.retries.fetch_add(1, Relaxed);
        if shared.up.load(Relaxed) {
            tracing::warn!(target: "audit", sink = %shared.label, error, "audit sink (syslog) failed; retrying");
        }
        shared.set_up(false);
        tokio::time::sleep(self.backoff.wait(None)).await;
    }
}
