//! Whether the machine has a network to reach servers through, for "why is it not moving".

use std::path::Path;

/// True when the kernel has a default route (IPv4 or IPv6). A machine without one reaches
/// nothing beyond its own links, so a job that failed in the transport waits for the network
/// rather than for a server.
pub fn has_default_route() -> bool {
    has_default_route_in(
        Path::new("/proc/net/route"),
        Path::new("/proc/net/ipv6_route"),
    )
}

fn has_default_route_in(ipv4: &Path, ipv6: &Path) -> bool {
    // IPv4: columns Iface, Destination (hex), …; a default route has destination 00000000.
    let ipv4_default = std::fs::read_to_string(ipv4).is_ok_and(|table| {
        table
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().nth(1) == Some("00000000"))
    });
    // IPv6: destination (32 hex digits) then prefix length; ::/0 through a device other than lo.
    let ipv6_default = std::fs::read_to_string(ipv6).is_ok_and(|table| {
        table.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 10
                && fields[0].bytes().all(|b| b == b'0')
                && fields[1] == "00"
                && fields[9] != "lo"
        })
    });
    ipv4_default || ipv6_default
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(ipv4: &str, ipv6: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let (four, six) = (dir.path().join("route"), dir.path().join("ipv6_route"));
        std::fs::write(&four, ipv4).unwrap();
        std::fs::write(&six, ipv6).unwrap();
        has_default_route_in(&four, &six)
    }

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    #[test]
    fn an_ipv4_default_route_counts() {
        let table =
            format!("{HEADER}eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");
        assert!(tables(&table, ""));
    }

    #[test]
    fn local_routes_alone_do_not() {
        let table =
            format!("{HEADER}eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
        let loopback_v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert!(!tables(&table, loopback_v6));
        assert!(!tables("", ""));
    }

    #[test]
    fn an_ipv6_default_route_counts() {
        let default_v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        assert!(tables(HEADER, default_v6));
    }
}
