//! The document gate (SPEC §4): what is decided about a GraphQL request before async-graphql
//! sees it. It parses the document once, measures its size after fragment expansion
//! without expanding anything (each fragment is measured once and its size added per
//! spread), and refuses what is too big, too deep, malformed or sent the wrong way, with a
//! client error code. Every transport (GET, POST, batch, WebSocket) goes through `admit`.

use super::errors::code;
use crate::config::Limits;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Name, Positioned, Value, Variables};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// How a request arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `GET /graphql`: queries only.
    Get,
    /// `POST /graphql`: queries and mutations.
    Post,
    /// A `subscribe` message on `/graphql/ws`: any operation.
    WebSocket,
}

/// Nesting of type-listing introspection fields (`types`, `fields`, …) allowed on one path:
/// `__schema { types { fields { type { fields … } } } }` multiplies the answer by the size of
/// the schema at every level.
const MAX_INTROSPECTION_EXPANSIONS: u32 = 3;

/// Root mutation fields that do expensive work for anyone (password hashing, mail) or
/// check a second-factor code: at most one of them per request, a batch counting as one
/// request (so aliases cannot multiply guesses).
const SIGN_IN_MUTATIONS: [&str; 7] = [
    "register",
    "login",
    "requestPasswordReset",
    "confirmTotp",
    "disableTotp",
    "regenerateRecoveryCodes",
    "stepUp",
];

/// What one request (a batch is one request) may still spend on `SIGN_IN_MUTATIONS`.
#[derive(Debug, Default)]
pub struct Budget {
    sign_ins: AtomicU32,
}

/// Why a request was refused before execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The document does not parse (`GRAPHQL_PARSE_FAILED`).
    Parse(String),
    /// The document is over a limit or invalid (`GRAPHQL_VALIDATION_FAILED`).
    Invalid(String),
    /// Something the client sent is wrong (`BAD_USER_INPUT` on `field`).
    BadInput {
        /// The offending part of the request, e.g. `operationName` or `variables.id`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A mutation or subscription over GET (HTTP 405).
    NotOverGet,
    /// A subscription over POST (use the WebSocket endpoint).
    NotOverPost,
}

impl Refusal {
    /// The `extensions.code` of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse(_) => code::GRAPHQL_PARSE_FAILED,
            Self::Invalid(_) => code::GRAPHQL_VALIDATION_FAILED,
            Self::BadInput { .. } | Self::NotOverGet | Self::NotOverPost => code::BAD_USER_INPUT,
        }
    }

    /// A message safe to show.
    pub fn message(&self) -> String {
        match self {
            Self::Parse(m) | Self::Invalid(m) => m.clone(),
            Self::BadInput { field, message } => format!("{field} {message}"),
            Self::NotOverGet => "mutations and subscriptions must be sent with POST".into(),
            Self::NotOverPost => "subscriptions are served over WebSocket at /graphql/ws".into(),
        }
    }

    /// The error as GraphQL reports it.
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let mut err = async_graphql::ServerError::new(self.message(), None);
        let extensions = err.extensions.get_or_insert_with(Default::default);
        extensions.set("code", self.code());
        if let Self::BadInput { field, .. } = self {
            extensions.set("field", field.as_str());
        }
        err
    }

    fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses and checks `request`; on success the parsed document is attached to it (so it is
/// not parsed again) and the type of the operation that will run is returned.
pub fn admit(
    request: &mut async_graphql::Request,
    transport: Transport,
    limits: &Limits,
    budget: &Budget,
) -> Result<OperationType, Refusal> {
    let doc = async_graphql::parser::parse_query(&request.query)
        .map_err(|err| Refusal::Parse(parse_message(&err)))?;
    check_size(&doc, limits)?;
    let op = select_operation(&doc, request.operation_name.as_deref())?;
    let ty = op.node.ty;
    match (transport, ty) {
        (Transport::Get, OperationType::Mutation | OperationType::Subscription) => {
            return Err(Refusal::NotOverGet);
        }
        (Transport::Post, OperationType::Subscription) => return Err(Refusal::NotOverPost),
        _ => {}
    }
    let roots = root_fields(&doc, &op.node.selection_set.node);
    match ty {
        OperationType::Subscription if roots.len() != 1 => {
            return Err(Refusal::Invalid(
                "a subscription selects exactly one root field".into(),
            ));
        }
        OperationType::Mutation => check_mutations(&roots, limits, budget)?,
        _ => {}
    }
    // Values are judged after the document is valid (GraphQL validates before it coerces
    // variables): a subscription at once (its execution starts only with its first event),
    // anything else by `ErrorLogging` once validation has passed.
    let values = check_variables(&op.node, &request.variables).and_then(|()| check_literals(&doc));
    match values {
        Err(refusal) if ty == OperationType::Subscription => return Err(refusal),
        Err(refusal) => request.data.insert(Deferred(refusal)),
        Ok(()) => {}
    }
    request.set_parsed_query(doc);
    Ok(ty)
}

/// A refusal that applies only if the document validates (see `ErrorLogging::execute`).
#[derive(Clone, Debug)]
pub struct Deferred(pub Refusal);

/// One line out of the parser's multi-line report.
fn parse_message(err: &async_graphql::parser::Error) -> String {
    let text = err.to_string();
    let what = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or_else(|| text.lines().next().unwrap_or("syntax error"));
    match err.positions().next() {
        Some(pos) => format!(
            "syntax error at line {} column {}: {what}",
            pos.line, pos.column
        ),
        None => format!("syntax error: {what}"),
    }
}

fn select_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Result<&'d Positioned<OperationDefinition>, Refusal> {
    let unknown = |n: &str| {
        Refusal::bad_input(
            "operationName",
            format!("names no operation of the document ({n:?})"),
        )
    };
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Ok(op),
        (DocumentOperations::Single(_), Some(n)) => Err(unknown(n)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().ok_or_else(|| unknown(""))
        }
        (DocumentOperations::Multiple(_), None) => Err(Refusal::bad_input(
            "operationName",
            "is required when the document holds several operations",
        )),
        (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n).ok_or_else(|| unknown(n)),
    }
}

/// The measure of a selection set with its fragments expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Size {
    /// Fields selected, `__typename` and introspection fields included.
    fields: u64,
    /// Aliased fields.
    aliases: u64,
    /// Deepest field nesting (a leaf counts as one level; `ofType` links count none).
    depth: u32,
    /// Most type-listing introspection fields on one path.
    expansions: u32,
}

impl Size {
    fn add(self, other: Size) -> Size {
        Size {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
            expansions: self.expansions.max(other.expansions),
        }
    }
}

/// Measures every operation of the document (async-graphql validates them all) and
/// refuses it when over a limit.
fn check_size(doc: &ExecutableDocument, limits: &Limits) -> Result<(), Refusal> {
    let mut walk = Walk {
        doc,
        memo: HashMap::new(),
    };
    let mut total = Size::default();
    for (_, op) in doc.operations.iter() {
        total = total.add(walk.set(&op.node.selection_set.node, false)?);
    }
    let over = |what: String| Err(Refusal::Invalid(what));
    if total.fields > limits.max_complexity as u64 {
        return over(format!(
            "the document selects {} fields once its fragments are expanded; the limit is {}",
            total.fields, limits.max_complexity
        ));
    }
    if total.depth as usize > limits.max_depth {
        return over(format!(
            "the document nests {} levels deep; the limit is {}",
            total.depth, limits.max_depth
        ));
    }
    if total.aliases > limits.max_aliases as u64 {
        return over(format!(
            "the document uses {} aliases; the limit is {}",
            total.aliases, limits.max_aliases
        ));
    }
    if total.expansions > MAX_INTROSPECTION_EXPANSIONS {
        return over(format!(
            "introspection nests {} type lists (types, fields, …) on one path; the limit is \
             {MAX_INTROSPECTION_EXPANSIONS}",
            total.expansions
        ));
    }
    Ok(())
}

/// A memoised walk: each fragment is measured once per mode (inside introspection or not).
struct Walk<'d> {
    doc: &'d ExecutableDocument,
    /// `None` while a fragment is being measured (a spread of it then is a cycle).
    memo: HashMap<(&'d Name, bool), Option<Size>>,
}

impl<'d> Walk<'d> {
    fn set(&mut self, set: &'d SelectionSet, introspection: bool) -> Result<Size, Refusal> {
        let mut size = Size::default();
        for item in &set.items {
            let item_size = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let inside = introspection || name == "__schema" || name == "__type";
                    let below = self.set(&field.selection_set.node, inside)?;
                    let free_link = inside && name == "ofType";
                    let lists_types = inside
                        && matches!(
                            name,
                            "types" | "fields" | "inputFields" | "interfaces" | "possibleTypes"
                        );
                    Size {
                        fields: below.fields.saturating_add(1),
                        aliases: below.aliases + u64::from(field.alias.is_some()),
                        depth: below.depth + u32::from(!free_link),
                        expansions: below.expansions + u32::from(lists_types),
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.set(&inline.node.selection_set.node, introspection)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, introspection)?
                }
            };
            size = size.add(item_size);
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'d Name, introspection: bool) -> Result<Size, Refusal> {
        match self.memo.get(&(name, introspection)) {
            Some(Some(size)) => return Ok(*size),
            Some(None) => {
                return Err(Refusal::Invalid(format!("fragment {name} spreads itself")));
            }
            None => {}
        }
        // An unknown fragment is reported by validation; it adds nothing here.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(Size::default());
        };
        self.memo.insert((name, introspection), None);
        let size = self.set(&fragment.node.selection_set.node, introspection)?;
        self.memo.insert((name, introspection), Some(size));
        Ok(size)
    }
}

/// The root fields of an operation, fragments expanded (the document is known to be small).
fn root_fields<'d>(doc: &'d ExecutableDocument, set: &'d SelectionSet) -> Vec<&'d str> {
    fn collect<'d>(
        doc: &'d ExecutableDocument,
        set: &'d SelectionSet,
        seen: &mut Vec<&'d Name>,
        out: &mut Vec<&'d str>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => out.push(field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => {
                    collect(doc, &inline.node.selection_set.node, seen, out)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(fragment) = doc.fragments.get(name) {
                        collect(doc, &fragment.node.selection_set.node, seen, out);
                    }
                    seen.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    collect(doc, set, &mut Vec::new(), &mut out);
    out
}

fn check_mutations(roots: &[&str], limits: &Limits, budget: &Budget) -> Result<(), Refusal> {
    if roots.len() > limits.max_mutations {
        return Err(Refusal::Invalid(format!(
            "an operation runs at most {} mutations; this one runs {}",
            limits.max_mutations,
            roots.len()
        )));
    }
    let sign_ins = roots
        .iter()
        .filter(|r| SIGN_IN_MUTATIONS.contains(r))
        .count() as u32;
    if sign_ins > 0 && budget.sign_ins.fetch_add(sign_ins, Ordering::Relaxed) + sign_ins > 1 {
        return Err(Refusal::Invalid(format!(
            "{} run at most once per request, together",
            SIGN_IN_MUTATIONS.join(", ")
        )));
    }
    Ok(())
}

/// Variables of a required type must be given (async-graphql would only notice when a
/// resolver reads them, as an internal-looking execution error).
fn check_variables(op: &OperationDefinition, variables: &Variables) -> Result<(), Refusal> {
    for definition in &op.variable_definitions {
        let definition = &definition.node;
        let name = definition.name.node.as_str();
        let required = !definition.var_type.node.nullable && definition.default_value.is_none();
        let given = variables.get(&definition.name.node);
        if required && matches!(given, None | Some(Value::Null)) {
            return Err(Refusal::bad_input(
                format!("variables.{name}"),
                format!("is required (type {})", definition.var_type.node),
            ));
        }
        if let Some(value) = given {
            check_text(value, &format!("variables.{name}"))?;
        }
    }
    Ok(())
}

/// String literals of the document (arguments, variable defaults) are held to the same
/// rule as variables.
fn check_literals(doc: &ExecutableDocument) -> Result<(), Refusal> {
    fn in_set(set: &SelectionSet) -> Result<(), Refusal> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    for (name, value) in &field.node.arguments {
                        if let Ok(value) = value
                            .node
                            .clone()
                            .into_const_with(|_| Ok::<_, ()>(Value::Null))
                        {
                            check_text(&value, name.node.as_str())?;
                        }
                    }
                    in_set(&field.node.selection_set.node)?;
                }
                Selection::InlineFragment(inline) => in_set(&inline.node.selection_set.node)?,
                Selection::FragmentSpread(_) => {}
            }
        }
        Ok(())
    }
    for (_, op) in doc.operations.iter() {
        for definition in &op.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                check_text(&default.node, definition.node.name.node.as_str())?;
            }
        }
        in_set(&op.node.selection_set.node)?;
    }
    for fragment in doc.fragments.values() {
        in_set(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

/// SPEC §4: no string the API takes may hold NUL or another control character (tab, line
/// feed and carriage return excepted); refused the same on every backend, before any
/// database is touched.
fn check_text(value: &Value, field: &str) -> Result<(), Refusal> {
    match value {
        Value::String(s)
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) =>
        {
            Err(Refusal::bad_input(
                field,
                "must not contain control characters",
            ))
        }
        Value::List(items) => items.iter().try_for_each(|v| check_text(v, field)),
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(k, v)| check_text(v, &format!("{field}.{k}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn admit_query(query: &str) -> Result<OperationType, Refusal> {
        let mut request = async_graphql::Request::new(query);
        admit(&mut request, Transport::Post, &limits(), &Budget::default())
    }

    /// `levels` fragments each spreading the previous one `fan_out` times.
    fn bomb(levels: usize, fan_out: usize) -> String {
        let mut doc = String::from("query { ...F0 }\nfragment F0 on Query { __typename }\n");
        for i in 1..=levels {
            let spreads = format!(" ...F{}", i - 1).repeat(fan_out);
            doc.push_str(&format!("fragment F{i} on Query {{{spreads} }}\n"));
        }
        doc.replace("query { ...F0 }", &format!("query {{ ...F{levels} }}"))
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        let started = std::time::Instant::now();
        let refusal = admit_query(&bomb(12, 10)).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert_eq!(refusal.code(), code::GRAPHQL_VALIDATION_FAILED);
        assert!(
            refusal.message().contains("1000000000000 fields"),
            "{refusal:?}"
        );
        assert!(
            admit_query(&bomb(2, 10)).is_ok(),
            "100 __typename fields are fine"
        );
    }

    #[test]
    fn cycles_and_depth_are_refused_and_of_type_links_are_free() {
        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(
            admit_query(cycle).unwrap_err().code(),
            code::GRAPHQL_VALIDATION_FAILED
        );
        let deep = "{ me { id } __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert!(
            admit_query(deep)
                .unwrap_err()
                .message()
                .contains("type lists")
        );
        let standard = include_str!("../../tests/fixtures/introspection-query.graphql");
        assert_eq!(admit_query(standard), Ok(OperationType::Query));
    }

    #[test]
    fn operations_are_selected_as_the_request_says() {
        let two = "query A { me { id } } query B { me { id } }";
        let refusal = admit_query(two).unwrap_err();
        assert_eq!(refusal.code(), code::BAD_USER_INPUT);
        let mut named = async_graphql::Request::new(two).operation_name("C");
        let refusal = admit(&mut named, Transport::Post, &limits(), &Budget::default());
        assert!(
            matches!(refusal, Err(Refusal::BadInput { field, .. }) if field == "operationName")
        );
        let mut get = async_graphql::Request::new("mutation { logout }");
        assert_eq!(
            admit(&mut get, Transport::Get, &limits(), &Budget::default()),
            Err(Refusal::NotOverGet)
        );
    }

    #[test]
    fn sign_in_mutations_run_once_per_request() {
        let budget = Budget::default();
        let login = "mutation { login(input: {email: \"a@b.io\", password: \"x\"}) { token } }";
        let mut first = async_graphql::Request::new(login);
        assert!(admit(&mut first, Transport::Post, &limits(), &budget).is_ok());
        let mut second = async_graphql::Request::new(login);
        assert!(admit(&mut second, Transport::Post, &limits(), &budget).is_err());
        let aliased = "mutation { a: register(input: {email: \"a@b.io\", password: \"x\"}) { token } \
                       b: register(input: {email: \"c@b.io\", password: \"x\"}) { token } }";
        assert!(admit_query(aliased).is_err());
    }

    /// The refusal `admit` deferred until the document validates.
    fn deferred(mut request: async_graphql::Request) -> Option<Refusal> {
        admit(&mut request, Transport::Post, &limits(), &Budget::default()).ok()?;
        request
            .data
            .get(&std::any::TypeId::of::<Deferred>())?
            .downcast_ref::<Deferred>()
            .map(|d| d.0.clone())
    }

    #[test]
    fn missing_variables_and_control_characters_are_bad_input() {
        let missing = async_graphql::Request::new("query($id: ID!) { order(id: $id) { id } }");
        assert!(
            matches!(deferred(missing), Some(Refusal::BadInput { field, .. }) if field == "variables.id")
        );
        let nul = async_graphql::Request::new("query($e: String!) { me { id } }")
            .variables(Variables::from_json(serde_json::json!({ "e": "a\u{0}b" })));
        assert!(deferred(nul).is_some());
        let literal =
            "mutation { login(input: {email: \"a\\u0000@b.io\", password: \"x\"}) { token } }";
        assert_eq!(
            deferred(async_graphql::Request::new(literal)).map(|r| r.code()),
            Some(code::BAD_USER_INPUT)
        );
        let fine = async_graphql::Request::new("query($id: ID!) { order(id: $id) { id } }")
            .variables(Variables::from_json(serde_json::json!({ "id": "x" })));
        assert!(deferred(fine).is_none());
    }
}
