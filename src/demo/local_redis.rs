//! A `redis-server` of the demo's own, on a free loopback port.

use super::err;

/// A `redis-server` of its own on a free loopback port, for the demo and
/// the tests: no snapshots, no append-only file unless `persistent` (then
/// AOF with `appendfsync always` in a directory of its own, so a restart
/// finds every claim). Killed when dropped.
pub struct LocalRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    persistent: bool,
    child: Option<std::process::Child>,
}

impl LocalRedis {
    /// Whether `redis-server` can be run.
    pub fn installed() -> bool {
        std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Choose a free port and a directory; nothing runs until [`LocalRedis::start`].
    pub fn reserve(persistent: bool) -> Result<LocalRedis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(err)?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "fedgate-redis-{}-{}",
            std::process::id(),
            crate::util::random_id().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).map_err(err)?;
        Ok(LocalRedis {
            port,
            dir,
            persistent,
            child: None,
        })
    }

    /// Reserve and start.
    pub fn spawn(persistent: bool) -> Result<LocalRedis, String> {
        let mut r = Self::reserve(persistent)?;
        r.start()?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (or restart, on the same port and directory) and wait until it
    /// answers PING, for at most 10 s.
    pub fn start(&mut self) -> Result<(), String> {
        self.kill();
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let log = self.dir.join("redis.log").display().to_string();
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &dir,
            "--logfile",
            &log,
        ];
        if self.persistent {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            args.extend(["--appendonly", "no"]);
        }
        let child = std::process::Command::new("redis-server")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!(
                        "redis-server on port {port} exited ({status}): {}",
                        tail.lines().last().unwrap_or("")
                    ));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "redis-server on port {port} did not answer within 10 s"
        ))
    }

    /// Kill it (SIGKILL: no shutdown save), and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A bare RESP `PING`, without a client library.
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
