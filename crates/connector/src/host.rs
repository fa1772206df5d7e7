//! The one rule for which hosts a request may reach: the `http`
//! connector's `--http-allow` list and a token's `--http-allow` scope both
//! match with it, so the gate never has two opinions about a host.

use std::fmt;

/// One allow entry: a host on any port (`api.example`), or on one
/// (`api.example:8443`, `[::1]:8080`). Hosts are compared exactly, in
/// lowercase: `API.example` is `api.example`, `x.api.example` is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    pub host: String,
    pub port: Option<u16>,
}

impl HostRule {
    /// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for anything
    /// else (a path, credentials, a bad port, an empty entry).
    pub fn parse(entry: &str) -> Option<HostRule> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() || entry.contains('/') || entry.contains('@') {
            return None;
        }
        if let Some(rest) = entry.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            return Some(HostRule {
                host: format!("[{host}]"),
                port,
            });
        }
        match entry.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !host.contains(':') => Some(HostRule {
                host: host.to_string(),
                port: Some(port.parse().ok()?),
            }),
            Some(_) => None,
            None => Some(HostRule {
                host: entry,
                port: None,
            }),
        }
    }

    /// Whether a request to `host` (as a parsed URL gives it: `host_str`)
    /// on `port` (with the scheme's default filled in) is allowed.
    pub fn admits(&self, host: &str, port: u16) -> bool {
        self.host == host.to_ascii_lowercase() && self.port.is_none_or(|p| p == port)
    }
}

/// Whether any of `rules` admits `host` on `port`.
pub fn admitted(rules: &[HostRule], host: &str, port: u16) -> bool {
    rules.iter().any(|r| r.admits(host, port))
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_parse_and_match_exactly() {
        let r = HostRule::parse("Host.Example");
        assert_eq!(
            r,
            Some(HostRule {
                host: "host.example".into(),
                port: None
            })
        );
        let r = r.unwrap();
        assert!(r.admits("host.example", 443));
        assert!(r.admits("HOST.example", 80));
        assert!(!r.admits("evil.host.example", 443));
        assert!(!r.admits("host.example.evil", 443));
        let p = HostRule::parse("a:8080");
        assert_eq!(
            p,
            Some(HostRule {
                host: "a".into(),
                port: Some(8080)
            })
        );
        let p = p.unwrap();
        assert!(p.admits("a", 8080) && !p.admits("a", 80));
        assert_eq!(
            HostRule::parse("[::1]:80"),
            Some(HostRule {
                host: "[::1]".into(),
                port: Some(80)
            })
        );
        assert_eq!(HostRule::parse("a:b"), None);
        assert_eq!(HostRule::parse("a/b"), None);
        assert_eq!(HostRule::parse("u@a"), None);
        assert_eq!(HostRule::parse(""), None);
        assert_eq!(
            HostRule::parse("a:8080").map(|r| r.to_string()),
            Some("a:8080".into())
        );
    }
}
