//! The user-registry action API mapping (`mappings/registry.toml`): action names and aliases,
//! the v4 call of each action, its inputs, and the table that turns v4 failures into the
//! legacy `{status, error, messages}` answer.

use std::collections::HashMap;

use http::Method;
use serde::Deserialize;
use toml::Spanned;

use super::checks::{event_list, parse_method};
use super::rules::{Matcher, RawMatcher, RawStatus, V4Failure};
use super::EventTable;
use crate::source::{Source, SourceError};
use crate::translate::path::PathTemplate;

#[derive(Debug, Clone)]
pub struct Registry {
    pub path: String,
    pub action_param: String,
    /// Answer fields ignored by shadow comparison; lower-cased.
    pub shadow_noise: Vec<String>,
    pub actions: Vec<Action>,
    /// Any name a client may send (action or alias) → (action index, accepted methods).
    names: HashMap<String, (usize, Vec<Method>)>,
    errors: Vec<ErrorRule>,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub method: Method,
    pub path: PathTemplate,
    /// The legacy events the call stands for, in the order v4 writes them (audit).
    pub events: Vec<String>,
    /// The v4 path needs the current user's id, read from the JWT.
    pub identity: bool,
    /// The call changes data (or sends mail): not shadowed unless the route opts in.
    pub writes: bool,
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSource {
    Body,
    Query,
    Tenant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Email,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub name: String,
    pub from: InputSource,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub required: bool,
    pub empty_message: Option<String>,
    pub format: Option<Format>,
    pub format_message: Option<String>,
    #[serde(default)]
    pub secret: bool,
    pub v4: Option<String>,
}

impl Input {
    /// The name and its aliases, in the order they are looked up.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// How the legacy service answered: which `status`, and with which HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKind {
    /// ValidationFailedResponse: `status: "validationfailed"`, HTTP 200.
    Validationfailed,
    /// ErrorResponse: `status: "error"`, HTTP 200.
    Error,
    /// ExceptionResponse: `status: "error"`, HTTP 500 (the service itself failed).
    Exception,
}

/// The legacy answer a failure becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyError {
    pub response: ResponseKind,
    pub error: String,
    /// Templates; `{text}` is the v4 message text.
    pub messages: Vec<String>,
}

#[derive(Debug, Clone)]
struct ErrorRule {
    matcher: Matcher,
    answer: LegacyError,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: Spanned<String>,
    action_param: String,
    #[serde(default)]
    shadow_noise: Vec<String>,
    actions: Vec<RawAction>,
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    name: Spanned<String>,
    methods: Vec<Spanned<String>>,
    method: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    events: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    identity: bool,
    #[serde(default = "super::checks::yes")]
    writes: bool,
    #[serde(default)]
    aliases: Vec<RawAlias>,
    inputs: Vec<Input>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    name: Spanned<String>,
    methods: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawError {
    actions: Option<Vec<String>>,
    status: Option<Spanned<RawStatus>>,
    code: Option<String>,
    text: Option<Spanned<String>>,
    response: ResponseKind,
    error: String,
    #[serde(default)]
    messages: Vec<String>,
}

impl Registry {
    pub fn load(src: &Source, events: &EventTable) -> Result<Self, SourceError> {
        let raw: RawFile = src.parse()?;
        if !raw.path.get_ref().starts_with('/') {
            return Err(src.error(raw.path.span(), "path", "expected an absolute path"));
        }
        let mut actions = Vec::new();
        let mut names = HashMap::new();
        for (i, a) in raw.actions.iter().enumerate() {
            let at = |f: &str| format!("actions[{i}].{f}");
            let path = PathTemplate::parse(a.path.get_ref()).ok_or_else(|| {
                src.error(a.path.span(), at("path"), "expected an absolute v4 path")
            })?;
            if path.needs_id() && !a.identity {
                return Err(src.error(
                    a.path.span(),
                    at("path"),
                    "the path has {id} but the action has no identity = true to supply it",
                ));
            }
            let action_events = match &a.events {
                Some(list) => event_list(src, events, list, &at("events"))?,
                None => Vec::new(),
            };
            for (j, input) in a.inputs.iter().enumerate() {
                if input.format.is_some() && input.format_message.is_none() {
                    return Err(src.error(
                        a.name.span(),
                        format!("actions[{i}].inputs[{j}].format_message"),
                        "an input with a format needs a format_message",
                    ));
                }
            }
            let idx = actions.len();
            let mut add = |n: &Spanned<String>, ms: &[Spanned<String>], f: String| {
                let methods = ms
                    .iter()
                    .enumerate()
                    .map(|(k, m)| parse_method(src, m, &format!("{f}.methods[{k}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if names.insert(n.get_ref().clone(), (idx, methods)).is_some() {
                    return Err(src.error(
                        n.span(),
                        format!("{f}.name"),
                        format!("duplicate action name {:?}", n.get_ref()),
                    ));
                }
                Ok(())
            };
            add(&a.name, &a.methods, format!("actions[{i}]"))?;
            for (k, al) in a.aliases.iter().enumerate() {
                add(&al.name, &al.methods, format!("actions[{i}].aliases[{k}]"))?;
            }
            actions.push(Action {
                name: a.name.get_ref().clone(),
                method: parse_method(src, &a.method, &at("method"))?,
                path,
                events: action_events,
                identity: a.identity,
                writes: a.writes,
                inputs: a.inputs.clone(),
            });
        }
        let mut errors = Vec::new();
        for (i, e) in raw.errors.iter().enumerate() {
            let matcher = Matcher::compile(
                src,
                &format!("errors[{i}]"),
                RawMatcher {
                    status: &e.status,
                    code: &e.code,
                    text: &e.text,
                    actions: &e.actions,
                },
            )?;
            if let Some(bad) = matcher
                .actions()
                .iter()
                .find(|a| !actions.iter().any(|x: &Action| &x.name == *a))
            {
                return Err(src.error(
                    e.status
                        .as_ref()
                        .map(|s| s.span())
                        .unwrap_or(raw.path.span()),
                    format!("errors[{i}].actions"),
                    format!("unknown action {bad:?}"),
                ));
            }
            errors.push(ErrorRule {
                matcher,
                answer: LegacyError {
                    response: e.response,
                    error: e.error.clone(),
                    messages: e.messages.clone(),
                },
            });
        }
        Ok(Self {
            path: raw.path.into_inner(),
            action_param: raw.action_param,
            shadow_noise: raw.shadow_noise.iter().map(|n| n.to_lowercase()).collect(),
            actions,
            names,
            errors,
        })
    }

    /// The action a client-sent name stands for, with the methods that name accepts.
    pub fn action(&self, name: &str) -> Option<(&Action, &[Method])> {
        self.names
            .get(name)
            .map(|(i, ms)| (&self.actions[*i], ms.as_slice()))
    }

    /// The legacy answer for a v4 failure; an exception when no rule matches, because an
    /// unexplained failure is the service failing, as the legacy API would have said.
    pub fn legacy_error(&self, failure: &V4Failure<'_>) -> LegacyError {
        self.errors
            .iter()
            .find(|r| r.matcher.matches(failure))
            .map(|r| r.answer.clone())
            .unwrap_or_else(|| LegacyError {
                response: ResponseKind::Exception,
                error: "Exception was thrown".into(),
                messages: vec!["Exception was thrown".into()],
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_mapping_loads_with_aliases() {
        let events = EventTable::load(&Source::new("e", super::super::EMBEDDED_EVENTS)).unwrap();
        let r = Registry::load(
            &Source::new("registry.toml", super::super::EMBEDDED_REGISTRY),
            &events,
        )
        .unwrap();
        let (a, methods) = r.action("activate").unwrap();
        assert_eq!(a.name, "activatenewpassword");
        assert!(methods.contains(&Method::GET));
        let (_, methods) = r.action("activatenewpassword").unwrap();
        assert_eq!(methods, [Method::POST]);
        let f = V4Failure {
            status: 404,
            code: "E404_01",
            text: "",
            action: Some("registernewpassword"),
        };
        assert_eq!(
            r.legacy_error(&f).error,
            "No User found with current mailadress"
        );
    }
}
