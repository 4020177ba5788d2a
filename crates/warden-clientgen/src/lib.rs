//! `warden gen client`: a TypeScript client in the shape of Encore's
//! generated client (`encore gen client`), made from an OpenAPI 3.1
//! document (Warden's own, built in-process).
//!
//! Why by hand: the OpenAPI generators (openapi-generator, orval,
//! openapi-typescript) make clients of another shape: the tutorial's
//! frontend calls `new Client(Local).auth.signUp({...})`, `APIError` with
//! Encore's `ErrCode`, and auth as an object or a generator. What this
//! needs of OpenAPI is small (paths, operations, JSON schemas to types) and
//! is all here.
//!
//! - Services are the operations' first tags, camel-cased into valid
//!   identifiers (`two-factor` -> `twoFactor`).
//! - Methods are the operation ids, without the service's name in front
//!   (`twoFactorEnable` -> `twoFactor.enable`).
//! - Every component schema an included operation reaches becomes a type in
//!   the namespace of the first service (in the document's tag order) that
//!   reaches it. No `any`: an unconstrained schema is `unknown`.
//! - The output depends only on the document and the options: maps are
//!   walked in sorted order, nothing reads the clock or the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

mod runtime;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Services to include (tag names or their identifiers); `None`: every
    /// service but those in [`EXCLUDED_BY_DEFAULT`].
    pub services: Option<Vec<String>>,
    /// The `Local` base URL.
    pub base_url: String,
    /// Named in the `User-Agent` outside browsers: `<app>-Generated-TS-Client`.
    pub app_name: String,
}

/// Services left out unless asked for: BetterAuth's API has BetterAuth's own
/// client.
pub const EXCLUDED_BY_DEFAULT: &[&str] = &["betterauth"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenError {
    #[error("the OpenAPI document has no `paths` object")]
    NoPaths,
    #[error("{method} {path} has no operationId")]
    NoOperationId { method: String, path: String },
    #[error("{method} {path} has no tag, so no service")]
    NoTag { method: String, path: String },
    #[error("two operations of service {service} are both named {name}")]
    DuplicateMethod { service: String, name: String },
    #[error("unknown service {name:?}; the document has: {available}")]
    UnknownService { name: String, available: String },
    #[error("no operation is left in the selected services")]
    Empty,
    #[error("unresolved schema reference {0:?}")]
    BadRef(String),
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One operation, as the client calls it.
struct Op<'a> {
    service: String,
    name: String,
    method: &'static str,
    path: &'a str,
    op: &'a Map<String, Value>,
    path_params: Vec<(String, &'a Value)>,
    query_params: Vec<(String, &'a Value, bool)>,
    body: Option<(&'a Value, bool)>,
}

/// A service's identifier: camelCase of its tag, letters and digits only.
pub fn service_ident(tag: &str) -> String {
    camel(tag)
}

fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if out.is_empty() && c.is_ascii_digit() {
                out.push('_');
            }
            if upper && !out.is_empty() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Words TypeScript does not take as a namespace, parameter or class name.
const RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "let",
    "static",
    "yield",
    "await",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "params",
    "query",
    "resp",
];

/// The method's name: the operation id, without the service in front.
pub fn method_name(service: &str, operation_id: &str) -> String {
    let id = camel(operation_id);
    if let Some(rest) = id.strip_prefix(service) {
        if rest.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            let mut c = rest.chars();
            let first = c.next().map(|f| f.to_ascii_lowercase()).unwrap_or('_');
            let name: String = std::iter::once(first).chain(c).collect();
            if !RESERVED.contains(&name.as_str()) {
                return name;
            }
        }
    }
    id
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == '$')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A property name as TypeScript writes it.
fn prop_name(s: &str) -> String {
    if is_ident(s) {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// A type name: the schema's name made an identifier (PascalCase kept).
fn type_name(schema: &str) -> String {
    let mut out: String = schema
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

struct Gen<'a> {
    schemas: &'a Map<String, Value>,
    /// Schema name -> the namespace that declares it.
    owner: BTreeMap<String, String>,
}

impl Gen<'_> {
    fn resolve_ref<'v>(&'v self, r: &str) -> Result<(&'v str, &'v Value), GenError> {
        let name = r
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| GenError::BadRef(r.to_owned()))?;
        self.schemas
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| GenError::BadRef(r.to_owned()))
    }

    /// The TypeScript type of `schema`, as written from namespace `ns`.
    fn ts(&self, schema: &Value, ns: &str, indent: usize) -> Result<String, GenError> {
        let Some(obj) = schema.as_object() else {
            // `true` or a non-object: anything.
            return Ok("unknown".into());
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let (name, _) = self.resolve_ref(r)?;
            let owner = self.owner.get(name).map(String::as_str).unwrap_or(ns);
            let t = type_name(name);
            return Ok(if owner == ns {
                t
            } else {
                format!("{owner}.{t}")
            });
        }
        for (key, join) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")] {
            if let Some(list) = obj
                .get(key)
                .and_then(Value::as_array)
                .filter(|l| !constraints_only(l))
            {
                let mut parts = Vec::new();
                for s in list {
                    let t = self.ts(s, ns, indent)?;
                    let t = if t.contains(" | ") || t.contains(" & ") {
                        format!("({t})")
                    } else {
                        t
                    };
                    if !parts.contains(&t) {
                        parts.push(t);
                    }
                }
                if parts.is_empty() {
                    return Ok("unknown".into());
                }
                // `T | null`, as one writes it.
                if let Some(i) = parts.iter().position(|p| p == "null") {
                    let null = parts.remove(i);
                    parts.push(null);
                }
                return Ok(parts.join(join));
            }
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            let lits: Vec<String> = values.iter().map(literal).collect();
            if !lits.is_empty() {
                return Ok(lits.join(" | "));
            }
        }
        if let Some(c) = obj.get("const") {
            return Ok(literal(c));
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ if obj.contains_key("properties") => vec!["object"],
            _ => vec![],
        };
        if types.is_empty() {
            return Ok("unknown".into());
        }
        let mut parts = Vec::new();
        for t in types {
            let part = match t {
                "string" => "string".to_owned(),
                "integer" | "number" => "number".to_owned(),
                "boolean" => "boolean".to_owned(),
                "null" => "null".to_owned(),
                "array" => {
                    let item = match obj.get("items") {
                        Some(i) => self.ts(i, ns, indent)?,
                        None => "unknown".into(),
                    };
                    if item.contains(' ') && !item.starts_with('{') {
                        format!("({item})[]")
                    } else {
                        format!("{item}[]")
                    }
                }
                "object" => self.object(obj, ns, indent)?,
                _ => "unknown".to_owned(),
            };
            parts.push(part);
        }
        Ok(parts.join(" | "))
    }

    /// An object schema as an inline type literal.
    fn object(
        &self,
        obj: &Map<String, Value>,
        ns: &str,
        indent: usize,
    ) -> Result<String, GenError> {
        let props = obj.get("properties").and_then(Value::as_object);
        let extra = match obj.get("additionalProperties") {
            Some(Value::Bool(false)) | None => None,
            Some(Value::Bool(true)) => Some("unknown".to_owned()),
            Some(s) => Some(self.ts(s, ns, indent + 1)?),
        };
        let props = match props {
            Some(p) if !p.is_empty() => p,
            _ => {
                let v = extra.unwrap_or_else(|| "unknown".into());
                return Ok(format!("{{ [key: string]: {v} }}"));
            }
        };
        let mut out = String::from("{\n");
        self.members(&mut out, obj, props, ns, indent + 1)?;
        if let Some(v) = extra {
            let _ = writeln!(out, "{}[key: string]: {v}", pad(indent + 1));
        }
        let _ = write!(out, "{}}}", pad(indent));
        Ok(out)
    }

    fn members(
        &self,
        out: &mut String,
        obj: &Map<String, Value>,
        props: &Map<String, Value>,
        ns: &str,
        indent: usize,
    ) -> Result<(), GenError> {
        let required: BTreeSet<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, schema) in props {
            doc_comment(out, schema, indent);
            let opt = if required.contains(name.as_str()) {
                ""
            } else {
                "?"
            };
            let t = self.ts(schema, ns, indent)?;
            let _ = writeln!(out, "{}{}{opt}: {t}", pad(indent), prop_name(name));
        }
        Ok(())
    }

    /// `export interface` (objects) or `export type` for a component.
    fn declaration(
        &self,
        out: &mut String,
        name: &str,
        schema: &Value,
        ns: &str,
    ) -> Result<(), GenError> {
        doc_comment(out, schema, 1);
        let obj = schema.as_object();
        let props = obj
            .and_then(|o| o.get("properties"))
            .and_then(Value::as_object)
            .filter(|p| !p.is_empty());
        let plain_object = obj.is_some_and(|o| {
            matches!(o.get("type"), Some(Value::String(t)) if t == "object")
                && ["oneOf", "anyOf", "allOf"].iter().all(|k| {
                    o.get(*k)
                        .and_then(Value::as_array)
                        .is_none_or(|l| constraints_only(l))
                })
                && !matches!(
                    o.get("additionalProperties"),
                    Some(Value::Object(_) | Value::Bool(true))
                )
        });
        match (obj, props, plain_object) {
            (Some(o), Some(p), true) => {
                let _ = writeln!(out, "    export interface {} {{", type_name(name));
                self.members(out, o, p, ns, 2)?;
                let _ = writeln!(out, "    }}\n");
            }
            _ => {
                let t = self.ts(schema, ns, 1)?;
                let _ = writeln!(out, "    export type {} = {t}\n", type_name(name));
            }
        }
        Ok(())
    }
}

/// `anyOf: [{required: [a]}, {required: [b]}]`: rules on the object's own
/// fields, no types of their own (TypeScript keeps both fields optional).
fn constraints_only(list: &[Value]) -> bool {
    const TYPING: [&str; 9] = [
        "type",
        "$ref",
        "properties",
        "enum",
        "const",
        "oneOf",
        "anyOf",
        "allOf",
        "items",
    ];
    !list.is_empty()
        && list.iter().all(|s| {
            s.as_object()
                .is_some_and(|o| !TYPING.iter().any(|k| o.contains_key(*k)))
        })
}

fn pad(indent: usize) -> String {
    "    ".repeat(indent)
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
        _ => "unknown".into(),
    }
}

/// A JSDoc comment from a schema's description (and format, if any).
fn doc_comment(out: &mut String, schema: &Value, indent: usize) {
    let description = schema.get("description").and_then(Value::as_str);
    if let Some(d) = description {
        let d = d.replace("*/", "*\\/");
        let lines: Vec<&str> = d.lines().collect();
        let p = pad(indent);
        if lines.len() == 1 {
            let _ = writeln!(out, "{p}/** {} */", lines[0].trim_end());
        } else {
            let _ = writeln!(out, "{p}/**");
            for l in lines {
                let l = l.trim_end();
                if l.is_empty() {
                    let _ = writeln!(out, "{p} *");
                } else {
                    let _ = writeln!(out, "{p} * {l}");
                }
            }
            let _ = writeln!(out, "{p} */");
        }
    }
}

/// Every component schema that `schema` reaches.
fn refs_of(schema: &Value, schemas: &Map<String, Value>, seen: &mut BTreeSet<String>) {
    match schema {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    if seen.insert(name.to_owned()) {
                        if let Some(s) = schemas.get(name) {
                            refs_of(s, schemas, seen);
                        }
                    }
                }
            }
            for v in o.values() {
                refs_of(v, schemas, seen);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs_of(v, schemas, seen)),
        _ => {}
    }
}

/// The JSON body schema of the lowest 2xx answer, if it has one; `Err` if
/// the operation answers with something other than JSON (a redirect or a
/// page): the method then returns the raw `Response`.
fn success_schema(op: &Map<String, Value>) -> Result<Option<&Value>, ()> {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some((_, ok)) = responses.iter().find(|(code, _)| code.starts_with('2')) else {
        return Err(());
    };
    match ok.get("content").and_then(Value::as_object) {
        None => Ok(None),
        Some(c) => match c.get("application/json").and_then(|j| j.get("schema")) {
            Some(s) => Ok(Some(s)),
            None => Err(()),
        },
    }
}

/// The client for the selected services of `doc`.
pub fn typescript(doc: &Value, options: &Options) -> Result<String, GenError> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or(GenError::NoPaths)?;
    let empty = Map::new();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);

    // Services in the document's tag order, then any other tags by name.
    let mut tag_order: Vec<String> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut tag_descriptions: BTreeMap<String, String> = BTreeMap::new();
    if let Some(tags) = doc.get("tags").and_then(Value::as_array) {
        for t in tags {
            if let (Some(n), Some(d)) = (
                t.get("name").and_then(Value::as_str),
                t.get("description").and_then(Value::as_str),
            ) {
                tag_descriptions.insert(service_ident(n), d.to_owned());
            }
        }
    }

    let mut ops: Vec<Op> = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in METHODS {
            let Some(op) = item.get(method).and_then(Value::as_object) else {
                continue;
            };
            let where_ = || (method.to_uppercase(), path.clone());
            let tag = op
                .get("tags")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    let (method, path) = where_();
                    GenError::NoTag { method, path }
                })?;
            if !tag_order.iter().any(|t| t == tag) {
                tag_order.push(tag.to_owned());
            }
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    let (method, path) = where_();
                    GenError::NoOperationId { method, path }
                })?;
            let service = service_ident(tag);
            let name = method_name(&service, id);
            let mut path_params = Vec::new();
            let mut query_params = Vec::new();
            let params = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(
                    op.get("parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                );
            for p in params {
                let (Some(pname), Some(place)) = (
                    p.get("name").and_then(Value::as_str),
                    p.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let schema = p.get("schema").unwrap_or(&Value::Bool(true));
                match place {
                    "path" => path_params.push((pname.to_owned(), schema)),
                    "query" => query_params.push((
                        pname.to_owned(),
                        p,
                        p.get("required").and_then(Value::as_bool).unwrap_or(false),
                    )),
                    _ => {}
                }
            }
            // Path parameters in the order the path names them.
            path_params.sort_by_key(|(n, _)| path.find(&format!("{{{n}}}")).unwrap_or(usize::MAX));
            let body = op.get("requestBody").and_then(|b| {
                let schema = b.pointer("/content/application~1json/schema")?;
                Some((
                    schema,
                    b.get("required").and_then(Value::as_bool).unwrap_or(false),
                ))
            });
            ops.push(Op {
                service,
                name,
                method,
                path,
                op,
                path_params,
                query_params,
                body,
            });
        }
    }

    let all_services: Vec<String> = tag_order.iter().map(|t| service_ident(t)).collect();
    let selected: Vec<String> = match &options.services {
        None => all_services
            .iter()
            .filter(|s| !EXCLUDED_BY_DEFAULT.contains(&s.as_str()))
            .cloned()
            .collect(),
        Some(list) => {
            let mut chosen = Vec::new();
            for name in list {
                // `two-factor`, `twoFactor` and `TwoFactor` name one service.
                let ident = service_ident(name.trim()).to_ascii_lowercase();
                let Some(found) = all_services
                    .iter()
                    .find(|s| s.to_ascii_lowercase() == ident)
                else {
                    return Err(GenError::UnknownService {
                        name: name.clone(),
                        available: all_services.join(", "),
                    });
                };
                chosen.push(found.clone());
            }
            // In the document's order, whatever order they were asked in.
            all_services
                .iter()
                .filter(|s| chosen.contains(s))
                .cloned()
                .collect()
        }
    };
    ops.retain(|o| selected.contains(&o.service));
    if ops.is_empty() {
        return Err(GenError::Empty);
    }
    let services: Vec<&String> = selected
        .iter()
        .filter(|s| ops.iter().any(|o| &o.service == *s))
        .collect();
    for s in &services {
        let mut names = BTreeSet::new();
        for o in ops.iter().filter(|o| &o.service == *s) {
            if !names.insert(o.name.clone()) {
                return Err(GenError::DuplicateMethod {
                    service: (*s).clone(),
                    name: o.name.clone(),
                });
            }
        }
    }

    // Which namespace declares each schema: the first service reaching it.
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for s in &services {
        let mut seen = BTreeSet::new();
        for o in ops.iter().filter(|o| &o.service == *s) {
            // What the methods take and return: error bodies are thrown as
            // `APIError`, so their schemas are not types of the client.
            for key in ["parameters", "requestBody"] {
                if let Some(v) = o.op.get(key) {
                    refs_of(v, schemas, &mut seen);
                }
            }
            if let Some(responses) = o.op.get("responses").and_then(Value::as_object) {
                for (_, r) in responses.iter().filter(|(code, _)| code.starts_with('2')) {
                    refs_of(r, schemas, &mut seen);
                }
            }
        }
        for name in seen {
            owner.entry(name).or_insert_with(|| (*s).clone());
        }
    }
    let gen = Gen { schemas, owner };

    let mut out = String::new();
    out.push_str(&runtime::header(&options.base_url));
    // The Client class.
    out.push_str(
        "/**\n * The API's client: one field per service.\n */\nexport default class Client {\n",
    );
    for s in &services {
        let _ = writeln!(out, "    public readonly {s}: {s}.ServiceClient");
    }
    out.push_str(
        "    private readonly options: ClientOptions\n    private readonly target: string\n\n",
    );
    out.push_str(
        "    /**\n     * Creates a client for the API at `target`.\n     *\n     * @param target  The base URL, e.g. `Local`\n     * @param options Options for every request: fetcher, requestInit, auth\n     */\n",
    );
    out.push_str("    constructor(target: BaseURL, options?: ClientOptions) {\n        this.target = target\n        this.options = options ?? {}\n        const base = new BaseClient(this.target, this.options)\n");
    for s in &services {
        let _ = writeln!(out, "        this.{s} = new {s}.ServiceClient(base)");
    }
    out.push_str("    }\n\n");
    out.push_str("    /**\n     * A copy of this client with `options` merged into its own (shallowly).\n     */\n    public with(options: ClientOptions): Client {\n        return new Client(this.target, {\n            ...this.options,\n            ...options,\n        })\n    }\n}\n\n");
    out.push_str(runtime::OPTIONS);

    for s in &services {
        out.push('\n');
        if let Some(d) = tag_descriptions.get(*s) {
            let _ = writeln!(out, "/** {} */", d.replace("*/", "*\\/"));
        }
        let _ = writeln!(out, "export namespace {s} {{");
        for (name, schema) in gen.schemas {
            if gen.owner.get(name) == Some(*s) {
                gen.declaration(&mut out, name, schema, s)?;
            }
        }
        for o in ops.iter().filter(|o| &o.service == *s) {
            if !o.query_params.is_empty() && o.body.is_none() {
                let _ = writeln!(out, "    export interface {}Params {{", pascal(&o.name));
                for (qname, p, required) in &o.query_params {
                    doc_comment(&mut out, p, 2);
                    let schema = p.get("schema").unwrap_or(&Value::Bool(true));
                    let t = gen.ts(schema, s, 2)?;
                    let opt = if *required { "" } else { "?" };
                    let _ = writeln!(out, "        {}{opt}: {t}", prop_name(qname));
                }
                out.push_str("    }\n\n");
            }
        }
        out.push_str("    export class ServiceClient {\n        private baseClient: BaseClient\n\n        constructor(baseClient: BaseClient) {\n            this.baseClient = baseClient\n");
        for o in ops.iter().filter(|o| &o.service == *s) {
            let _ = writeln!(out, "            this.{0} = this.{0}.bind(this)", o.name);
        }
        out.push_str("        }\n");
        for o in ops.iter().filter(|o| &o.service == *s) {
            method(&mut out, &gen, o, s)?;
        }
        out.push_str("    }\n}\n");
    }
    out.push('\n');
    out.push_str(&runtime::RUNTIME.replace("{{APP}}", &type_name(&options.app_name)));
    Ok(out)
}

fn pascal(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// One method of a `ServiceClient`.
fn method(out: &mut String, gen: &Gen, o: &Op, ns: &str) -> Result<(), GenError> {
    out.push('\n');
    let summary = o.op.get("summary").and_then(Value::as_str);
    let description = o.op.get("description").and_then(Value::as_str);
    let mut doc = String::new();
    if let Some(s) = summary {
        doc.push_str(s);
    }
    if let Some(d) = description {
        if !doc.is_empty() {
            doc.push_str("\n\n");
        }
        doc.push_str(d);
    }
    let _ = write!(doc, "\n\n`{} {}`", o.method.to_uppercase(), o.path);
    doc_comment(
        out,
        &Value::Object(Map::from_iter([(
            "description".into(),
            Value::String(doc.trim().to_owned()),
        )])),
        2,
    );

    let mut args: Vec<String> = Vec::new();
    let mut used = BTreeSet::new();
    let mut path_expr = String::new();
    let mut rest = o.path;
    let mut names = BTreeMap::new();
    for (pname, schema) in &o.path_params {
        let mut arg = camel(pname);
        while !used.insert(arg.clone()) {
            arg.push('_');
        }
        let t = gen.ts(schema, ns, 2)?;
        let t = if t == "unknown" { "string".into() } else { t };
        args.push(format!("{arg}: {t}"));
        names.insert(pname.clone(), arg);
    }
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        path_expr.push_str(&escape_template(&rest[..start]));
        let pname = &rest[start + 1..start + end];
        match names.get(pname) {
            Some(arg) => {
                let _ = write!(path_expr, "${{encodeURIComponent(String({arg}))}}");
            }
            None => path_expr.push_str(&escape_template(&rest[start..start + end + 1])),
        }
        rest = &rest[start + end + 1..];
    }
    path_expr.push_str(&escape_template(rest));

    let method_upper = o.method.to_uppercase();
    let mut call_body = "undefined".to_owned();
    let mut call_query = None;
    if let Some((schema, required)) = o.body {
        let mut t = gen.ts(schema, ns, 2)?;
        if !required {
            // An optional body: leave it out rather than send `null`.
            t = t.strip_suffix(" | null").map(str::to_owned).unwrap_or(t);
        }
        args.push(format!("params{}: {t}", if required { "" } else { "?" }));
        call_body = if required {
            "JSON.stringify(params)".into()
        } else {
            "params === undefined ? undefined : JSON.stringify(params)".into()
        };
        if !o.query_params.is_empty() {
            // Not in Warden's API; kept simple should it appear.
            let fields: Vec<String> = o
                .query_params
                .iter()
                .map(|(q, _, req)| {
                    format!("{}{}: string", prop_name(q), if *req { "" } else { "?" })
                })
                .collect();
            args.push(format!("query?: {{ {} }}", fields.join(", ")));
            call_query = Some("query".to_owned());
        }
    } else if !o.query_params.is_empty() {
        let required = o.query_params.iter().any(|(_, _, r)| *r);
        let t = format!("{}Params", pascal(&o.name));
        args.push(format!("params{}: {t}", if required { "" } else { "?" }));
        call_query = Some("params".to_owned());
    }

    let ret = match success_schema(o.op) {
        Ok(Some(schema)) => Some(gen.ts(schema, ns, 2)?),
        Ok(None) => None,
        Err(()) => Some("RAW".to_owned()),
    };
    let query_arg = match &call_query {
        Some(q) => format!(", {{ query: toQuery({q}) }}"),
        None => String::new(),
    };
    let body_arg = if call_body == "undefined" && call_query.is_none() {
        String::new()
    } else {
        format!(", {call_body}")
    };
    let call = format!(
        "this.baseClient.callTypedAPI(\"{method_upper}\", `{path_expr}`{body_arg}{query_arg})"
    );
    match ret.as_deref() {
        Some("RAW") => {
            let _ = writeln!(
                out,
                "        public async {}({}): Promise<globalThis.Response> {{\n            return await {call}\n        }}",
                o.name,
                args.join(", ")
            );
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "        public async {}({}): Promise<{t}> {{\n            const resp = await {call}\n            return await resp.json() as {t}\n        }}",
                o.name,
                args.join(", ")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "        public async {}({}): Promise<void> {{\n            await {call}\n        }}",
                o.name,
                args.join(", ")
            );
        }
    }
    Ok(())
}

fn escape_template(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('`', "\\`")
        .replace("${", "\\${")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> Options {
        Options {
            services: None,
            base_url: "http://localhost:4000".into(),
            app_name: "warden".into(),
        }
    }

    #[test]
    fn identifiers() {
        assert_eq!(service_ident("two-factor"), "twoFactor");
        assert_eq!(service_ident("auth"), "auth");
        assert_eq!(service_ident("my_service.v2"), "myServiceV2");
        assert_eq!(service_ident("2fa"), "_2fa");
        assert_eq!(service_ident("delete"), "delete_");
        assert_eq!(method_name("twoFactor", "twoFactorEnable"), "enable");
        assert_eq!(method_name("admin", "adminListUsers"), "listUsers");
        assert_eq!(method_name("auth", "signUp"), "signUp");
        assert_eq!(method_name("auth", "authority"), "authority");
        assert_eq!(prop_name("a-b"), "\"a-b\"");
    }

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "tags": [{"name": "two-factor", "description": "2FA"}, {"name": "auth"}],
            "paths": {
                "/auth/signup": {"post": {"tags": ["auth"], "operationId": "signUp",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignUp"}}}},
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}}}}}},
                "/tf/{id}/x": {"delete": {"tags": ["two-factor"], "operationId": "twoFactorDrop",
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                                   {"name": "limit", "in": "query", "schema": {"type": ["integer", "null"]}}],
                    "responses": {"204": {"description": "gone"}}}},
                "/verify": {"get": {"tags": ["auth"], "operationId": "verify",
                    "responses": {"302": {"description": "redirect"}}}},
                "/either": {"post": {"tags": ["auth"], "operationId": "either",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Either"}}}},
                    "responses": {"204": {"description": "ok"}}}}
            },
            "components": {"schemas": {
                "SignUp": {"type": "object", "required": ["email"], "properties": {
                    "email": {"type": "string", "format": "email", "description": "Who"},
                    "name": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}},
                "Answer": {"oneOf": [{"$ref": "#/components/schemas/SignUp"}, {"type": "null"}]},
                "Unused": {"type": "object", "properties": {"x": {}}},
                "Either": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}
            }}
        })
    }

    #[test]
    fn services_methods_and_types() {
        let ts = typescript(&doc(), &options()).unwrap();
        assert!(
            ts.contains("public readonly twoFactor: twoFactor.ServiceClient"),
            "{ts}"
        );
        assert!(ts.contains("export namespace twoFactor {"));
        assert!(
            ts.contains("public async drop(id: string, params?: DropParams): Promise<void>"),
            "{ts}"
        );
        assert!(
            ts.contains(
                "`/tf/${encodeURIComponent(String(id))}/x`, undefined, { query: toQuery(params) })"
            ),
            "{ts}"
        );
        assert!(ts.contains("limit?: number | null"));
        assert!(
            ts.contains("public async signUp(params: SignUp): Promise<Answer>"),
            "{ts}"
        );
        assert!(ts.contains("export interface SignUp {"));
        assert!(ts.contains("        /** Who */\n        email: string\n"));
        assert!(ts.contains("name?: string | null"));
        assert!(ts.contains("tags?: (\"a\" | \"b\")[]"), "{ts}");
        assert!(ts.contains("export type Answer = SignUp | null"));
        assert!(ts.contains("public async verify(): Promise<globalThis.Response>"));
        assert!(!ts.contains("Unused"), "unreached schemas are left out");
        assert!(
            ts.contains(
                "    export interface Either {\n        a?: string\n        b?: string\n    }"
            ),
            "{ts}"
        );
        assert!(!ts.contains(": any"), "no any");
        assert!(ts.contains("export const Local: BaseURL = \"http://localhost:4000\""));
    }

    #[test]
    fn service_selection() {
        let mut o = options();
        o.services = Some(vec!["auth".into()]);
        let ts = typescript(&doc(), &o).unwrap();
        assert!(!ts.contains("namespace twoFactor"));
        for name in ["two-factor", "twoFactor", "TwoFactor"] {
            o.services = Some(vec![name.into()]);
            let ts = typescript(&doc(), &o).unwrap();
            assert!(
                ts.contains("namespace twoFactor") && !ts.contains("namespace auth"),
                "{name}"
            );
        }
        o.services = Some(vec!["nope".into()]);
        assert_eq!(
            typescript(&doc(), &o).unwrap_err(),
            GenError::UnknownService {
                name: "nope".into(),
                available: "twoFactor, auth".into()
            }
        );
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            typescript(&doc(), &options()).unwrap(),
            typescript(&doc(), &options()).unwrap()
        );
    }

    #[test]
    fn missing_operation_id_is_named() {
        let mut d = doc();
        d["paths"]["/verify"]["get"]
            .as_object_mut()
            .unwrap()
            .remove("operationId");
        assert_eq!(
            typescript(&d, &options()).unwrap_err(),
            GenError::NoOperationId {
                method: "GET".into(),
                path: "/verify".into()
            }
        );
    }
}
