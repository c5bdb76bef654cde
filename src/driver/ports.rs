//! Landlock TCP port rules for a task: bind only to the ports Nomad allocated to it, connect
//! only to `connect_ports` when the task sets it. Applied when the promises allow TCP sockets,
//! the launcher is the built-in one and the kernel has Landlock network rules (ABI ≥ 4);
//! otherwise the task runs without them and StartTask reports that as a task event.

use crate::policy::{Policy, PortRange};
use crate::proto::drivers::{network_isolation_spec::NetworkIsolationMode, TaskConfig};
use crate::sandbox::promise::Promise;

/// First Landlock ABI with TCP bind/connect rules (Linux 6.7).
pub const LANDLOCK_NET_ABI: i32 = 4;

/// The TCP ports the task may bind: the group's ports (inside the allocation's network
/// namespace the mapped `to` port, else the host port) and the ports of task-level networks.
pub fn allocated_ports(task: &TaskConfig) -> Vec<PortRange> {
    let in_netns = task
        .network_isolation_spec
        .as_ref()
        .is_some_and(|n| n.mode == NetworkIsolationMode::Group as i32 && !n.path.is_empty());
    let res = task.resources.clone().unwrap_or_default();
    let mut ports: Vec<i32> = res
        .ports
        .iter()
        .map(|p| if in_netns && p.to > 0 { p.to } else { p.value })
        .collect();
    for net in res.allocated_resources.iter().flat_map(|a| &a.networks) {
        ports.extend(net.reserved_ports.iter().map(|p| p.value));
        ports.extend(net.dynamic_ports.iter().map(|p| p.value));
    }
    let mut v: Vec<PortRange> = ports
        .into_iter()
        .filter_map(|p| u16::try_from(p).ok().filter(|p| *p > 0))
        .map(PortRange::single)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether the promises allow TCP sockets at all.
fn allows_tcp(policy: &Policy) -> bool {
    let p = policy.promises();
    p.contains(Promise::Inet) || p.contains(Promise::Anet) || p.contains(Promise::Dns)
}

/// `policy` with the task's port rules, and the notice for a task event when they cannot be
/// enforced. `abi` is the kernel's Landlock ABI as the plugin sees it.
pub fn net_rules(
    policy: Policy,
    task: &TaskConfig,
    connect_ports: Option<Vec<PortRange>>,
    abi: Result<i32, String>,
) -> (Policy, Option<String>) {
    if !allows_tcp(&policy) {
        return (policy, None);
    }
    let what = if connect_ports.is_some() {
        "TCP port restriction (bind to the allocated ports, connect to `connect_ports`)"
    } else {
        "TCP port restriction (bind to the allocated ports only)"
    };
    let why = if !policy.launcher().is_built_in() {
        Some("the external launcher (`pledge_executable`) has no Landlock port rules".to_string())
    } else if policy.no_unveil() {
        Some("the task runs without Landlock".to_string())
    } else {
        match abi {
            Ok(v) if v >= LANDLOCK_NET_ABI => None,
            Ok(v) => Some(format!(
                "this kernel's Landlock ABI is {v}, network rules need ABI {LANDLOCK_NET_ABI} (Linux 6.7)"
            )),
            Err(reason) => Some(format!("Landlock is unavailable ({reason})")),
        }
    };
    if let Some(why) = why {
        let notice = format!("{what} is not enforced: {why}; the task may bind and connect to any TCP port its promises allow");
        return (policy, Some(notice));
    }
    let mut policy = policy.with_tcp_bind(allocated_ports(task));
    if let Some(c) = connect_ports {
        policy = policy.with_tcp_connect(c);
    }
    (policy, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Launcher, PromiseSet};
    use crate::proto::drivers::{
        AllocatedTaskResources, NetworkIsolationSpec, NetworkPort, NetworkResource, PortMapping,
        Resources,
    };

    fn task(ports: &[(i32, i32)], task_net: &[i32], bridge: bool) -> TaskConfig {
        TaskConfig {
            resources: Some(Resources {
                ports: ports
                    .iter()
                    .map(|&(value, to)| PortMapping {
                        label: "p".into(),
                        value,
                        to,
                        host_ip: "127.0.0.1".into(),
                    })
                    .collect(),
                allocated_resources: Some(AllocatedTaskResources {
                    networks: vec![NetworkResource {
                        reserved_ports: task_net
                            .iter()
                            .map(|&value| NetworkPort {
                                label: "r".into(),
                                value,
                            })
                            .collect(),
                        dynamic_ports: vec![NetworkPort {
                            label: "d".into(),
                            value: 0,
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            network_isolation_spec: bridge.then(|| NetworkIsolationSpec {
                mode: NetworkIsolationMode::Group as i32,
                path: "/var/run/netns/a1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn p(list: &[u16]) -> Vec<PortRange> {
        list.iter().copied().map(PortRange::single).collect()
    }

    #[test]
    fn allocated_ports_follow_the_network_mode() {
        // Host mode: the host ports.
        let t = task(&[(8080, 0), (20001, 80), (20002, -1)], &[9000], false);
        assert_eq!(allocated_ports(&t), p(&[8080, 9000, 20001, 20002]));
        // Bridge: the port inside the namespace (`to`), the host port when `to` is unset or -1.
        let t = task(&[(8080, 0), (20001, 80), (20002, -1)], &[], true);
        assert_eq!(allocated_ports(&t), p(&[80, 8080, 20002]));
        assert_eq!(allocated_ports(&TaskConfig::default()), p(&[]));
    }

    #[test]
    fn rules_apply_only_with_tcp_promises_the_built_in_launcher_and_abi_4() {
        let pol = |promises: &str, l: Launcher| {
            Policy::new(PromiseSet::parse(promises).unwrap(), vec![], l).unwrap()
        };
        let t = task(&[(8080, 0)], &[], false);
        let (got, notice) = net_rules(pol("stdio inet", Launcher::default()), &t, None, Ok(6));
        assert_eq!(got.tcp_bind(), Some(&p(&[8080])[..]));
        assert_eq!((got.tcp_connect(), notice), (None, None));
        let (got, _) = net_rules(
            pol("stdio anet", Launcher::default()),
            &t,
            Some(p(&[443])),
            Ok(4),
        );
        assert_eq!(got.tcp_connect(), Some(&p(&[443])[..]));
        // No TCP promise: nothing to restrict, nothing to say.
        let (got, notice) = net_rules(pol("stdio", Launcher::default()), &t, None, Ok(6));
        assert_eq!((got.tcp_bind(), notice), (None, None));
        // Old kernel, no Landlock, external launcher: unrestricted, and said so.
        for (l, abi, want) in [
            (Launcher::default(), Ok(3), "ABI is 3"),
            (
                Launcher::default(),
                Err("off".to_string()),
                "unavailable (off)",
            ),
            (
                Launcher::External("/opt/pledge.com".into()),
                Ok(6),
                "`pledge_executable`",
            ),
        ] {
            let (got, notice) = net_rules(pol("stdio inet", l), &t, Some(p(&[1])), abi);
            assert_eq!((got.tcp_bind(), got.tcp_connect()), (None, None));
            let n = notice.expect("a notice");
            assert!(n.contains("is not enforced") && n.contains(want), "{n}");
            assert!(n.contains("`connect_ports`"), "{n}");
        }
    }
}
