//! Port allocation for `run`, as a Nomad client does it for a group's `network { port ... }`
//! blocks: static ports as written, dynamic ports picked from a range (Nomad's default
//! 20000-32000, `--port-range`) among those free on the host. The result becomes the
//! TaskConfig's `resources.ports` and the `NOMAD_PORT_*`, `NOMAD_HOST_PORT_*`, `NOMAD_IP_*`,
//! `NOMAD_ADDR_*` (and `NOMAD_HOST_IP_*`, `NOMAD_HOST_ADDR_*`, `NOMAD_ALLOC_PORT_*`) variables.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};

use thiserror::Error;

use super::job::PortSpec;
use crate::proto::drivers::PortMapping;

/// Nomad's default dynamic port range (`client { min_dynamic_port, max_dynamic_port }`).
pub const DEFAULT_RANGE: (u16, u16) = (20000, 32000);

/// The address `run`'s tasks get: the loopback interface (it is a single-machine stand-in).
pub const HOST_IP: &str = "127.0.0.1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PortError {
    #[error("group {group:?}: no free port left in the dynamic range {lo}-{hi} for port {label:?}: widen --port-range")]
    Exhausted {
        group: String,
        label: String,
        lo: u16,
        hi: u16,
    },
    #[error("group {group:?}: port label {label:?} is used twice: give every `port` block its own label")]
    Duplicate { group: String, label: String },
}

/// One allocated port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated {
    pub label: String,
    /// The host port.
    pub value: u16,
    /// The port inside the allocation's network namespace (`to`); 0 = unset.
    pub to: i32,
}

/// Whether nothing listens on TCP `port` of the host right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// Allocates `ports` of `group`: dynamic ones are the first free ports of `range` (per
/// `free`), never one of the group's static ports or an earlier pick.
pub fn allocate(
    group: &str,
    ports: &[PortSpec],
    range: (u16, u16),
    free: impl Fn(u16) -> bool,
) -> Result<Vec<Allocated>, PortError> {
    let mut taken: Vec<u16> = ports.iter().filter_map(|p| p.static_port).collect();
    let mut out = Vec::new();
    for p in ports {
        if out.iter().any(|a: &Allocated| a.label == p.label) {
            return Err(PortError::Duplicate {
                group: group.into(),
                label: p.label.clone(),
            });
        }
        let value = match p.static_port {
            Some(v) => v,
            None => {
                let pick = (range.0..=range.1).find(|c| !taken.contains(c) && free(*c));
                let v = pick.ok_or_else(|| PortError::Exhausted {
                    group: group.into(),
                    label: p.label.clone(),
                    lo: range.0,
                    hi: range.1,
                })?;
                taken.push(v);
                v
            }
        };
        out.push(Allocated {
            label: p.label.clone(),
            value,
            to: p.to.unwrap_or(0),
        });
    }
    Ok(out)
}

/// The TaskConfig's `resources.ports`.
pub fn mappings(ports: &[Allocated]) -> Vec<PortMapping> {
    ports
        .iter()
        .map(|p| PortMapping {
            label: p.label.clone(),
            value: i32::from(p.value),
            to: p.to,
            host_ip: HOST_IP.into(),
        })
        .collect()
}

/// The port variables Nomad sets for a group's ports. `NOMAD_PORT_x` is the port the task
/// listens on: `to` in a bridge network when set, else the host port.
pub fn env(ports: &[Allocated], bridge: bool) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for p in ports {
        let l = &p.label;
        let inside = if bridge && p.to > 0 {
            p.to.to_string()
        } else {
            p.value.to_string()
        };
        let host = p.value.to_string();
        env.insert(format!("NOMAD_PORT_{l}"), inside.clone());
        env.insert(format!("NOMAD_ALLOC_PORT_{l}"), inside);
        env.insert(format!("NOMAD_HOST_PORT_{l}"), host.clone());
        env.insert(format!("NOMAD_IP_{l}"), HOST_IP.into());
        env.insert(format!("NOMAD_HOST_IP_{l}"), HOST_IP.into());
        env.insert(format!("NOMAD_ADDR_{l}"), format!("{HOST_IP}:{host}"));
        env.insert(format!("NOMAD_HOST_ADDR_{l}"), format!("{HOST_IP}:{host}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(label: &str, static_port: Option<u16>, to: Option<i32>) -> PortSpec {
        PortSpec {
            label: label.into(),
            static_port,
            to,
        }
    }

    #[test]
    fn static_as_written_dynamic_from_the_range() {
        let ports = [
            spec("http", Some(8080), None),
            spec("dyn", None, None),
            spec("dyn2", None, Some(9000)),
        ];
        // 20000 is busy on the host, 20001 is a static port of the group.
        let mut ports = ports.to_vec();
        ports.push(spec("fixed", Some(20001), None));
        let got = allocate("g", &ports, (20000, 20010), |p| p != 20000).unwrap();
        let values: Vec<u16> = got.iter().map(|a| a.value).collect();
        assert_eq!(values, [8080, 20002, 20003, 20001]);
        assert_eq!(got[2].to, 9000);
        let e = allocate("g", &ports, (20000, 20001), |_| true).unwrap_err();
        assert!(e.to_string().contains("--port-range"), "{e}");
        let e = allocate(
            "g",
            &[spec("a", None, None), spec("a", Some(1), None)],
            (1, 9),
            |_| true,
        )
        .unwrap_err();
        assert!(matches!(e, PortError::Duplicate { .. }), "{e}");
    }

    #[test]
    fn env_and_mappings_follow_nomad() {
        let ports = [
            Allocated {
                label: "http".into(),
                value: 8080,
                to: 0,
            },
            Allocated {
                label: "web".into(),
                value: 20005,
                to: 80,
            },
        ];
        let host = env(&ports, false);
        assert_eq!(host["NOMAD_PORT_http"], "8080");
        assert_eq!(host["NOMAD_HOST_PORT_http"], "8080");
        assert_eq!(host["NOMAD_IP_http"], "127.0.0.1");
        assert_eq!(host["NOMAD_ADDR_http"], "127.0.0.1:8080");
        assert_eq!(host["NOMAD_PORT_web"], "20005");
        let bridge = env(&ports, true);
        assert_eq!(bridge["NOMAD_PORT_web"], "80");
        assert_eq!(bridge["NOMAD_HOST_PORT_web"], "20005");
        assert_eq!(bridge["NOMAD_ADDR_web"], "127.0.0.1:20005");
        let m = mappings(&ports);
        assert_eq!(
            (m[1].value, m[1].to, m[1].host_ip.as_str()),
            (20005, 80, "127.0.0.1")
        );
    }
}
