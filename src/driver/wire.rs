//! Conversions between our plain types and the generated wire types (the only driver module,
//! with the service handlers, that names prost types).

use std::time::SystemTime;

use super::fingerprint::{AttrValue, Fingerprint, Health};
use super::schema::Spec;
use super::TaskEvent;
use crate::proto::drivers::{
    fingerprint_response::HealthState, DriverTaskEvent, FingerprintResponse,
};
use crate::proto::hclspec;
use crate::proto::structs::{attribute, Attribute};

pub fn spec(s: &Spec) -> hclspec::Spec {
    use hclspec::spec::Block;
    let block = match s {
        Spec::Object(attrs) => Block::Object(hclspec::Object {
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), spec(v)))
                .collect(),
        }),
        Spec::Attr { name, ty, required } => Block::Attr(hclspec::Attr {
            name: name.to_string(),
            r#type: ty.to_string(),
            required: *required,
        }),
        Spec::Default { primary, default } => Block::Default(Box::new(hclspec::Default {
            primary: Some(Box::new(spec(primary))),
            default: Some(Box::new(spec(default))),
        })),
        Spec::Literal(v) => Block::Literal(hclspec::Literal {
            value: v.to_string(),
        }),
    };
    hclspec::Spec { block: Some(block) }
}

pub fn fingerprint(f: &Fingerprint) -> FingerprintResponse {
    FingerprintResponse {
        attributes: f
            .attributes
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    AttrValue::String(s) => attribute::Value::StringVal(s.clone()),
                    AttrValue::Int(i) => attribute::Value::IntVal(*i),
                    AttrValue::Bool(b) => attribute::Value::BoolVal(*b),
                };
                (
                    k.clone(),
                    Attribute {
                        value: Some(value),
                        unit: String::new(),
                    },
                )
            })
            .collect(),
        health: match f.health {
            Health::Healthy => HealthState::Healthy,
            Health::Unhealthy => HealthState::Unhealthy,
        } as i32,
        health_description: f.description.clone(),
        err: String::new(),
    }
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub fn task_event(e: &TaskEvent) -> DriverTaskEvent {
    DriverTaskEvent {
        task_id: e.task_id.clone(),
        alloc_id: e.alloc_id.clone(),
        task_name: e.task_name.clone(),
        timestamp: Some(timestamp(e.timestamp)),
        message: e.message.clone(),
        annotations: e.annotations.clone().into_iter().collect(),
    }
}
