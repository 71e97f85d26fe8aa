//! Who the client is, and how often it may try the local admin token.
//!
//! - [`Cidr`]: an address block of `server.trusted_proxies`.
//! - [`client_ip`]: the TCP peer, or — only when the peer is a trusted proxy —
//!   the last address in `X-Forwarded-For` that is not itself a trusted
//!   proxy (the left part of the header is whatever the client wrote).
//! - [`Throttle`]: a fixed window of tries per client, in a map of bounded
//!   size (IPv6 clients by their /64, so one host cannot take many slots).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client's address: the TCP peer, unless the peer is one of `trusted`;
/// then the right-most `X-Forwarded-For` entry that is not a trusted proxy
/// (the peer itself when the header is absent or unreadable).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .map(|s| s.parse::<IpAddr>().map(canonical))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

/// The key of a client for throttles and per-client bounds: IPv4 as is,
/// IPv6 by its /64.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    }
}

/// At most `limit` tries per client per `window`, remembering at most
/// `capacity` clients (when full: the expired ones go, then the oldest).
pub struct Throttle {
    limit: u32,
    window: Duration,
    capacity: usize,
    seen: Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration, capacity: usize) -> Throttle {
        Throttle {
            limit,
            window,
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count a try of `ip` at `now`: `Ok(())` when allowed, or `Err(seconds)`
    /// until the client may try again.
    pub fn attempt(&self, ip: IpAddr, now: OffsetDateTime) -> Result<(), u64> {
        let key = bucket(ip);
        // A poisoned lock refuses (fail closed) for a minute.
        let Ok(mut seen) = self.seen.lock() else {
            return Err(self.window.whole_seconds().max(1) as u64);
        };
        if !seen.contains_key(&key) && seen.len() >= self.capacity {
            let window = self.window;
            seen.retain(|_, (start, _)| *start + window > now);
            if seen.len() >= self.capacity {
                if let Some(oldest) = seen.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k) {
                    seen.remove(&oldest);
                }
            }
        }
        let entry = seen.entry(key).or_insert((now, 0));
        if entry.0 + self.window <= now {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let left = (entry.0 + self.window - now).whole_seconds().max(1);
            return Err(left as u64);
        }
        entry.1 += 1;
        Ok(())
    }

    /// How many clients are remembered (for tests).
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8:1::1")));
        assert!(Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.7")));
        assert!(!Cidr::parse("192.0.2.7").unwrap().contains(ip("192.0.2.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_a_trusted_proxy() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let h = ["203.0.113.9, 10.0.0.7"];
        // Peer not trusted: the header is the client's own writing.
        assert_eq!(
            client_ip(ip("198.51.100.1"), h.iter().copied(), &trusted),
            ip("198.51.100.1")
        );
        // No trusted proxies configured: the peer.
        assert_eq!(
            client_ip(ip("10.0.0.1"), h.iter().copied(), &[]),
            ip("10.0.0.1")
        );
        // Through trusted proxies: the right-most untrusted hop.
        assert_eq!(
            client_ip(ip("10.0.0.1"), h.iter().copied(), &trusted),
            ip("203.0.113.9")
        );
        // A spoofed left part does not win over what the proxy appended.
        let spoofed = ["1.1.1.1, 203.0.113.9"];
        assert_eq!(
            client_ip(ip("10.0.0.1"), spoofed.iter().copied(), &trusted),
            ip("203.0.113.9")
        );
        // Garbage in the header: the peer.
        let bad = ["not-an-ip"];
        assert_eq!(
            client_ip(ip("10.0.0.1"), bad.iter().copied(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_throttle_counts_per_client_and_stays_bounded() {
        let now = OffsetDateTime::now_utc();
        let t = Throttle::new(5, Duration::minutes(1), 3);
        for _ in 0..5 {
            assert!(t.attempt(ip("192.0.2.1"), now).is_ok());
        }
        let wait = t.attempt(ip("192.0.2.1"), now).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(t.attempt(ip("192.0.2.2"), now).is_ok());
        // A minute later: allowed again.
        assert!(t
            .attempt(ip("192.0.2.1"), now + Duration::seconds(61))
            .is_ok());
        // One IPv6 host cannot take many slots: its /64 is one client.
        for i in 0..10 {
            let a = format!("2001:db8::{i:x}");
            let _ = t.attempt(ip(&a), now);
        }
        assert!(t.attempt(ip("2001:db8::ff"), now).is_err());
        // Many clients: the map never grows past its capacity.
        for i in 0..100 {
            let _ = t.attempt(ip(&format!("198.51.100.{i}")), now);
        }
        assert!(t.len() <= 3);
    }
}
