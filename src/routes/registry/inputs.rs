//! The action's inputs: read from the body, the query or the tenant as the mapping says,
//! checked (required, not empty, e-mail format) with the legacy service's wording, and put
//! into the v4 body under their v4 names.

use serde_json::{Map, Value};

use crate::config::Tenant;
use crate::error::GatewayError;
use crate::mapping::registry::{Action, Format, Input, InputSource};

/// Reads every input of the action, checks it, and builds the v4 body. Returns the secret
/// values too, so v4 texts can be scrubbed of them.
pub(super) fn collect_inputs(
    action: &Action,
    body: &Map<String, Value>,
    query: &[(String, String)],
    tenant: &Tenant,
) -> Result<(Map<String, Value>, Vec<String>), GatewayError> {
    let mut values: Vec<(&Input, Option<String>)> = Vec::new();
    for input in &action.inputs {
        let value = match input.from {
            InputSource::Body => match input.names().find_map(|n| body.get(n)) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    return Err(GatewayError::InvalidValue(format!(
                        "{} must be a string",
                        input.name
                    )))
                }
            },
            InputSource::Query => input
                .names()
                .find_map(|n| query.iter().find(|(k, _)| k == n))
                .map(|(_, v)| v.clone()),
            InputSource::Tenant => tenant_field(tenant, &input.name),
        };
        values.push((input, value));
    }
    let missing: Vec<String> = values
        .iter()
        .filter(|(i, v)| i.required && v.is_none())
        .map(|(i, _)| i.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(GatewayError::MissingAttributes(missing));
    }
    let mut out = Map::new();
    let mut secrets = Vec::new();
    for (input, value) in values {
        let Some(value) = value else { continue };
        if value.trim().is_empty() {
            if input.required {
                let msg = input
                    .empty_message
                    .clone()
                    .unwrap_or_else(|| format!("{} is empty!", input.name));
                return Err(GatewayError::InvalidValue(msg));
            }
            continue;
        }
        if input.format == Some(Format::Email) && !looks_like_email(&value) {
            return Err(GatewayError::InvalidValue(
                input.format_message.clone().unwrap_or_default(),
            ));
        }
        if input.secret {
            secrets.push(value.clone());
        }
        if let Some(v4) = &input.v4 {
            out.insert(v4.clone(), Value::String(value));
        }
    }
    Ok((out, secrets))
}

fn tenant_field(t: &Tenant, name: &str) -> Option<String> {
    match name {
        "return_url" => Some(t.return_url.clone()),
        "source_system" => Some(t.source_system.clone()),
        "client_code" => Some(t.client_code.clone()),
        "paper_code" => Some(t.paper_code.clone()),
        "client_group_code" => Some(t.client_group_code.clone()),
        _ => None,
    }
}

/// One `@`, something before it, a dot after it, no spaces: the legacy check's strictness.
fn looks_like_email(s: &str) -> bool {
    let mut it = s.splitn(2, '@');
    match (it.next(), it.next()) {
        (Some(local), Some(domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_email;

    #[test]
    fn email_check_is_the_simple_legacy_one() {
        assert!(looks_like_email("a@b.cd"));
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b@c.d", "a@.b", "a@b.",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
