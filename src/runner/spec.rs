//! A small hcldec: checks a task's evaluated `config {}` attributes against the schema the plugin
//! returned from `TaskConfigSchema`, as a Nomad client does before it encodes them
//! (nomad-plugin-protocol.md §4.1–4.2): unknown attributes and missing required ones are errors,
//! values are converted to the declared type, absent ones become null or their default.

use hcl::eval::{Context, Evaluate};
use hcl::{Map, Value};
use thiserror::Error;

use crate::proto::hclspec::{spec::Block, Spec};

#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    #[error(
        "{place}: unsupported argument `{name}` in config; the pledge driver accepts: {accepted}"
    )]
    Unsupported {
        place: String,
        name: String,
        accepted: String,
    },
    #[error("{place}: missing required argument `{name}` in config")]
    Missing { place: String, name: String },
    #[error("{place}: config `{name}`: {problem}")]
    Type {
        place: String,
        name: String,
        problem: String,
    },
    #[error("the plugin's schema uses a construct `run` does not support: {0}")]
    Schema(String),
}

/// One top-level attribute of the schema.
struct Field {
    key: String,
    input: String,
    ty: String,
    required: bool,
    default: Option<Value>,
}

fn fields(spec: &Spec) -> Result<Vec<Field>, SpecError> {
    let Some(Block::Object(object)) = &spec.block else {
        return Err(SpecError::Schema("the top level is not an object".into()));
    };
    let mut out = Vec::new();
    for (key, child) in &object.attributes {
        out.push(field(key, child)?);
    }
    Ok(out)
}

fn field(key: &str, spec: &Spec) -> Result<Field, SpecError> {
    match &spec.block {
        Some(Block::Attr(a)) => Ok(Field {
            key: key.to_string(),
            input: if a.name.is_empty() {
                key.to_string()
            } else {
                a.name.clone()
            },
            ty: a.r#type.clone(),
            required: a.required,
            default: None,
        }),
        Some(Block::Default(d)) => {
            let primary = d.primary.as_deref().ok_or_else(|| {
                SpecError::Schema(format!("`{key}`: default without a primary spec"))
            })?;
            let mut f = field(key, primary)?;
            match d.default.as_deref().and_then(|s| s.block.as_ref()) {
                Some(Block::Literal(lit)) => f.default = Some(literal(key, &lit.value)?),
                _ => {
                    return Err(SpecError::Schema(format!(
                        "`{key}`: default is not a literal"
                    )))
                }
            }
            Ok(f)
        }
        other => Err(SpecError::Schema(format!("`{key}`: {other:?}"))),
    }
}

fn literal(key: &str, text: &str) -> Result<Value, SpecError> {
    let body = hcl::parse(&format!("v = {text}\n"))
        .map_err(|e| SpecError::Schema(format!("`{key}`: literal {text:?}: {e}")))?;
    let expr = body
        .attributes()
        .next()
        .map(|a| a.expr().clone())
        .ok_or_else(|| SpecError::Schema(format!("`{key}`: empty literal")))?;
    expr.evaluate(&Context::new())
        .map_err(|e| SpecError::Schema(format!("`{key}`: literal {text:?}: {e}")))
}

/// Checks `given` against `spec` and returns the full object: every schema key, converted.
pub fn decode(
    place: &str,
    spec: &Spec,
    given: Vec<(String, Value)>,
) -> Result<Map<String, Value>, SpecError> {
    let fields = fields(spec)?;
    let mut out = Map::new();
    for (name, _) in &given {
        if !fields.iter().any(|f| &f.input == name) {
            let mut accepted: Vec<&str> = fields.iter().map(|f| f.input.as_str()).collect();
            accepted.sort();
            return Err(SpecError::Unsupported {
                place: place.to_string(),
                name: name.clone(),
                accepted: accepted.join(", "),
            });
        }
    }
    for f in fields {
        let value = given
            .iter()
            .find(|(n, _)| *n == f.input)
            .map(|(_, v)| v.clone());
        let value = match value {
            Some(Value::Null) | None if f.required => {
                return Err(SpecError::Missing {
                    place: place.to_string(),
                    name: f.input,
                })
            }
            Some(Value::Null) | None => f.default.clone().unwrap_or(Value::Null),
            Some(v) => convert(v, &f.ty).map_err(|problem| SpecError::Type {
                place: place.to_string(),
                name: f.input.clone(),
                problem,
            })?,
        };
        out.insert(f.key, value);
    }
    Ok(out)
}

/// Converts a value to an HCL type expression's type, with HCL's conversions.
fn convert(value: Value, ty: &str) -> Result<Value, String> {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_prefix("list(").or_else(|| ty.strip_prefix("set(")) {
        let inner = inner.strip_suffix(')').ok_or("bad type expression")?;
        return match value {
            Value::Array(items) => items
                .into_iter()
                .map(|v| convert(v, inner))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Err(format!(
                "must be a list, e.g. [\"a\", \"b\"], not {}",
                kind(&other)
            )),
        };
    }
    if let Some(inner) = ty.strip_prefix("map(") {
        let inner = inner.strip_suffix(')').ok_or("bad type expression")?;
        return match value {
            Value::Object(m) => m
                .into_iter()
                .map(|(k, v)| convert(v, inner).map(|v| (k, v)))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            other => Err(format!("must be a map, not {}", kind(&other))),
        };
    }
    match (ty, value) {
        ("any", v) => Ok(v),
        ("string", Value::String(s)) => Ok(Value::String(s)),
        ("string", Value::Number(n)) => Ok(Value::String(n.to_string())),
        ("string", Value::Bool(b)) => Ok(Value::String(b.to_string())),
        ("number", Value::Number(n)) => Ok(Value::Number(n)),
        ("number", Value::String(s)) => s
            .parse::<f64>()
            .ok()
            .and_then(hcl::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("must be a number, not the string {s:?}")),
        ("bool", Value::Bool(b)) => Ok(Value::Bool(b)),
        ("bool", Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        (ty, other) => Err(format!("must be a {ty}, not {}", kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{schema::task_config_spec, wire};

    fn decode_task(given: Vec<(&str, Value)>) -> Result<Map<String, Value>, SpecError> {
        let given = given.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        decode("task \"t\"", &wire::spec(&task_config_spec()), given)
    }

    #[test]
    fn fills_every_key_and_defaults() {
        let out = decode_task(vec![("command", Value::from("sleep"))]).unwrap();
        assert_eq!(out["command"], Value::from("sleep"));
        assert_eq!(out["args"], Value::Null);
        assert_eq!(out["importance"], Value::from("normal"));
        assert!(out.contains_key("unveil") && out.contains_key("promises"));
    }

    #[test]
    fn converts_like_hcl() {
        let out = decode_task(vec![
            ("command", Value::from("sleep")),
            (
                "args",
                Value::Array(vec![Value::from(1), Value::Bool(true)]),
            ),
        ])
        .unwrap();
        assert_eq!(
            out["args"],
            Value::Array(vec![Value::from("1"), Value::from("true")])
        );
    }

    #[test]
    fn rejects_what_nomad_rejects() {
        let err = decode_task(vec![
            ("command", Value::from("x")),
            ("comand", Value::from("y")),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unsupported argument `comand`") && err.contains("command"),
            "{err}"
        );
        let err = decode_task(vec![("args", Value::Array(vec![]))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing required argument `command`"), "{err}");
        let err = decode_task(vec![
            ("command", Value::from("x")),
            ("args", Value::from("a b")),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`args`") && err.contains("must be a list"),
            "{err}"
        );
    }
}
