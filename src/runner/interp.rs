//! Client-side interpolation: evaluates job-file expressions against the task environment, the
//! way a Nomad client fills in `${NOMAD_TASK_DIR}`, `${NOMAD_ALLOC_ID}`, `${env["X"]}` and
//! `${node.unique.name}` before handing the config to the driver.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate};
use hcl::{Expression, Value};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("{place}: cannot evaluate `{field}`: {message}; only the task's environment (e.g. ${{NOMAD_TASK_DIR}}, ${{env[\"NAME\"]}}) and node.unique.name are known to `run`")]
pub struct InterpError {
    pub place: String,
    pub field: String,
    pub message: String,
}

/// Variables visible to job-file expressions.
pub struct Scope {
    ctx: Context<'static>,
}

impl Scope {
    /// Every `NOMAD_*` variable of `env` becomes a variable of its own; `env` is the whole map;
    /// `node.unique.name` is this machine's host name.
    pub fn new(env: &BTreeMap<String, String>, node_name: &str) -> Scope {
        let mut ctx = Context::new();
        for (k, v) in env.iter().filter(|(k, _)| k.starts_with("NOMAD_")) {
            ctx.declare_var(k.as_str(), v.as_str());
        }
        let env_obj: hcl::Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        ctx.declare_var("env", Value::Object(env_obj));
        let mut unique = hcl::Map::new();
        unique.insert("name".to_string(), Value::from(node_name));
        let mut node = hcl::Map::new();
        node.insert("unique".to_string(), Value::Object(unique));
        ctx.declare_var("node", Value::Object(node));
        Scope { ctx }
    }

    /// Evaluates one attribute.
    pub fn eval(&self, place: &str, field: &str, expr: &Expression) -> Result<Value, InterpError> {
        expr.evaluate(&self.ctx).map_err(|e| InterpError {
            place: place.to_string(),
            field: field.to_string(),
            message: e.to_string(),
        })
    }

    /// Evaluates attributes to strings (the `env {}` block).
    pub fn eval_strings(
        &self,
        place: &str,
        attrs: &[(String, Expression)],
    ) -> Result<BTreeMap<String, String>, InterpError> {
        attrs
            .iter()
            .map(|(k, e)| {
                let text = match self.eval(place, k, e)? {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                Ok((k.clone(), text))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(src: &str) -> Expression {
        let body = hcl::parse(&format!("x = {src}")).unwrap();
        let e = body.attributes().next().unwrap().expr().clone();
        e
    }

    fn scope() -> Scope {
        let env = BTreeMap::from([
            ("NOMAD_TASK_DIR".to_string(), "/a/t/local".to_string()),
            ("HOME".to_string(), "/home/x".to_string()),
        ]);
        Scope::new(&env, "host1")
    }

    #[test]
    fn interpolates_like_a_client() {
        let s = scope();
        assert_eq!(
            s.eval("t", "x", &expr(r#""rwc:${NOMAD_TASK_DIR}/data""#))
                .unwrap(),
            Value::from("rwc:/a/t/local/data")
        );
        assert_eq!(
            s.eval("t", "x", &expr(r#""${env["HOME"]}""#)).unwrap(),
            Value::from("/home/x")
        );
        assert_eq!(
            s.eval("t", "x", &expr(r#"["a", "${node.unique.name}"]"#))
                .unwrap(),
            Value::Array(vec![Value::from("a"), Value::from("host1")])
        );
        assert_eq!(
            s.eval("t", "x", &expr(r#""quote \" and newline\n""#))
                .unwrap(),
            Value::from("quote \" and newline\n")
        );
    }

    #[test]
    fn unknown_variables_are_errors_naming_the_field() {
        let err = scope()
            .eval("task \"t\"", "args", &expr(r#""${NOMAD_NOPE}""#))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`args`") && err.contains("task \"t\""),
            "{err}"
        );
    }
}
