//! Parsing shared by both admin front ends, the tutorial's `/admin/*` and
//! BetterAuth's `<base>/admin/*`: role lists, permission statements, and
//! the query of a user listing (search, filter, sort, page) from
//! query-string pairs (the search value is `search` in the tutorial API,
//! `searchValue` in BetterAuth's).
//!
//! Errors are domain errors ([`AuthError::Invalid`], naming the field or
//! parameter); each front end maps them to its own format.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use warden_core::admin::Statements;
use warden_core::{AuthError, Condition, Operator, UserField, UserQuery};

/// Longest search value accepted.
pub const MAX_SEARCH: usize = 256;

fn invalid(field: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field,
        message: message.into(),
    }
}

/// At most this many roles in one list, resources or actions in a
/// permission check, and characters in one name.
const MAX_NAMES: usize = 64;

/// A role, or several, as a client sends it: `"admin"`, `"admin,support"`
/// or `["admin", "support"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleInput {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for RoleInput {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RoleInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a role name or an array of role names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RoleInput, E> {
                Ok(RoleInput::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RoleInput, A::Error> {
                let mut roles = Vec::new();
                while let Some(r) = seq.next_element::<String>()? {
                    if roles.len() == MAX_NAMES {
                        return Err(serde::de::Error::custom(format!(
                            "at most {MAX_NAMES} roles"
                        )));
                    }
                    roles.push(r);
                }
                Ok(RoleInput::Many(roles))
            }
        }
        de.deserialize_any(V)
    }
}

impl RoleInput {
    /// The role names (a string is split at commas, as roles are stored),
    /// each trimmed; whether each role exists is the domain's check.
    pub fn into_roles(self, field: &'static str) -> Result<Vec<String>, AuthError> {
        let roles: Vec<String> = match self {
            RoleInput::One(s) => s.split(',').map(|r| r.trim().to_owned()).collect(),
            RoleInput::Many(list) => list.into_iter().map(|r| r.trim().to_owned()).collect(),
        };
        if roles.len() > MAX_NAMES {
            return Err(invalid(field, format!("at most {MAX_NAMES} roles")));
        }
        if roles.iter().any(|r| r.is_empty()) {
            return Err(invalid(field, "role names cannot be empty"));
        }
        if roles.iter().any(|r| r.chars().count() > MAX_NAMES) {
            return Err(invalid(
                field,
                format!("role names are at most {MAX_NAMES} characters"),
            ));
        }
        Ok(roles)
    }
}

/// [`RoleInput::into_roles`] of a JSON value (a field of a free-form object).
pub fn roles_from_json(field: &'static str, v: &Value) -> Result<Vec<String>, AuthError> {
    RoleInput::deserialize(v)
        .map_err(|e| invalid(field, e.to_string()))?
        .into_roles(field)
}

/// A permission check, `{"user": ["ban", "list"], "session": ["revoke"]}`.
/// Whether the resources and actions exist is the domain's concern (an
/// unknown one is simply not granted).
pub fn statements_from_json(field: &'static str, v: &Value) -> Result<Statements, AuthError> {
    const SHAPE: &str = "must be an object of resource: [actions], e.g. {\"user\": [\"ban\"]}";
    let Value::Object(map) = v else {
        return Err(invalid(field, SHAPE));
    };
    if map.is_empty() {
        return Err(invalid(field, "at least one resource is required"));
    }
    if map.len() > MAX_NAMES {
        return Err(invalid(field, format!("at most {MAX_NAMES} resources")));
    }
    let mut out = Statements::new();
    for (resource, actions) in map {
        let Value::Array(actions) = actions else {
            return Err(invalid(field, SHAPE));
        };
        if actions.len() > MAX_NAMES {
            return Err(invalid(
                field,
                format!("at most {MAX_NAMES} actions per resource"),
            ));
        }
        let actions = actions
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(field, SHAPE))?;
        if resource.chars().count() > MAX_NAMES
            || actions.iter().any(|a| a.chars().count() > MAX_NAMES)
        {
            return Err(invalid(
                field,
                format!("resource and action names are at most {MAX_NAMES} characters"),
            ));
        }
        out.insert(resource.clone(), actions);
    }
    Ok(out)
}

/// The query-string pairs of a request (`None`: no query string), decoded.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, AuthError> {
    match raw {
        None | Some("") => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| invalid("query", format!("malformed query string: {e}"))),
    }
}

/// The value of a parameter given at most once.
pub fn single<'a>(
    pairs: &'a [(String, String)],
    key: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    let mut found = pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
    let first = found.next();
    if found.next().is_some() {
        return Err(invalid(key, "given more than once"));
    }
    Ok(first.map(String::as_str))
}

/// `limit`: an integer from 1 to `max`, `default` when absent.
pub fn limit(
    pairs: &[(String, String)],
    key: &'static str,
    default: u32,
    max: u32,
) -> Result<u32, AuthError> {
    match single(pairs, key)? {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| invalid(key, format!("must be an integer from 1 to {max}"))),
    }
}

/// `offset`: a non-negative integer (at most 2^63 - 1), 0 when absent.
pub fn offset(pairs: &[(String, String)], key: &'static str) -> Result<u64, AuthError> {
    match single(pairs, key)? {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| invalid(key, "must be a non-negative integer")),
    }
}

/// A user listing's query from its parameters:
///
/// - `<search_key>` (ignored when empty), `searchField` (`email`, the
///   default, or `name`), `searchOperator` (`contains`, the default,
///   `starts_with` or `ends_with`);
/// - `filterValue`, `filterField` (any user field; `email` by default),
///   `filterOperator` (`eq`, the default, `ne`, `lt`, `lte`, `gt`, `gte`,
///   `in`, `not_in`, `contains`, `starts_with`, `ends_with`); for `in` and
///   `not_in`, `filterValue` may be repeated or comma-separated; booleans
///   are `true`/`false`, dates RFC 3339;
/// - `sortBy` (any user field), `sortDirection` (`asc`, the default, or
///   `desc`);
/// - `limit` (1 to 1000, default 100), `offset`.
///
/// Every parameter is checked even when it has no effect (a
/// `searchField` without a search value), so that a typo is an error,
/// not a silently different listing. Unknown parameters are ignored.
pub fn user_query(
    pairs: &[(String, String)],
    search_key: &'static str,
) -> Result<UserQuery, AuthError> {
    let mut conditions = Vec::new();

    let search_field = match single(pairs, "searchField")? {
        None => UserField::Email,
        Some(f) => match UserField::parse("searchField", f)? {
            f @ (UserField::Email | UserField::Name) => f,
            _ => return Err(invalid("searchField", "must be email or name")),
        },
    };
    let search_op = match single(pairs, "searchOperator")? {
        None => Operator::Contains,
        Some(o) => match Operator::parse("searchOperator", o)? {
            o @ (Operator::Contains | Operator::StartsWith | Operator::EndsWith) => o,
            _ => {
                return Err(invalid(
                    "searchOperator",
                    "must be contains, starts_with or ends_with",
                ))
            }
        },
    };
    if let Some(v) = single(pairs, search_key)?.filter(|v| !v.is_empty()) {
        if v.chars().count() > MAX_SEARCH {
            return Err(invalid(
                search_key,
                format!("must be at most {MAX_SEARCH} characters"),
            ));
        }
        conditions.push(Condition::parse(
            search_key,
            search_field,
            search_op,
            &[v.to_owned()],
        )?);
    }

    let filter_field = single(pairs, "filterField")?
        .map(|f| UserField::parse("filterField", f))
        .transpose()?;
    let filter_op = single(pairs, "filterOperator")?
        .map(|o| Operator::parse("filterOperator", o))
        .transpose()?;
    let values: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "filterValue")
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        if filter_field.is_some() || filter_op.is_some() {
            return Err(invalid(
                "filterValue",
                "required with filterField or filterOperator",
            ));
        }
    } else {
        let op = filter_op.unwrap_or(Operator::Eq);
        let values: Vec<String> = match op {
            Operator::In | Operator::NotIn => values
                .iter()
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect(),
            _ => values.iter().map(|v| (*v).to_owned()).collect(),
        };
        if values.iter().any(|v| v.chars().count() > MAX_SEARCH) {
            return Err(invalid(
                "filterValue",
                format!("values must be at most {MAX_SEARCH} characters"),
            ));
        }
        conditions.push(Condition::parse(
            "filterValue",
            filter_field.unwrap_or(UserField::Email),
            op,
            &values,
        )?);
    }

    let sort_by = single(pairs, "sortBy")?
        .map(|f| UserField::parse("sortBy", f))
        .transpose()?;
    let desc = match single(pairs, "sortDirection")? {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid("sortDirection", "must be asc or desc")),
    };

    Ok(UserQuery {
        conditions,
        any_of: Vec::new(),
        sort: sort_by.map(|f| (f, desc)),
        limit: limit(
            pairs,
            "limit",
            UserQuery::DEFAULT_LIMIT,
            UserQuery::MAX_LIMIT,
        )?,
        offset: offset(pairs, "offset")?,
    })
}

#[cfg(test)]
mod tests {
    use warden_core::FieldValue;

    use super::*;

    fn q(s: &str) -> Result<UserQuery, AuthError> {
        user_query(&pairs(Some(s)).unwrap(), "search")
    }

    fn field_of(e: AuthError) -> &'static str {
        match e {
            AuthError::Invalid { field, .. } => field,
            e => panic!("not an input error: {e:?}"),
        }
    }

    #[test]
    fn roles_and_statements() {
        let one: RoleInput = serde_json::from_str(r#""admin, support""#).unwrap();
        assert_eq!(one.into_roles("role").unwrap(), ["admin", "support"]);
        let many: RoleInput = serde_json::from_str(r#"["admin"]"#).unwrap();
        assert_eq!(many.into_roles("role").unwrap(), ["admin"]);
        assert!(serde_json::from_str::<RoleInput>("5").is_err());
        assert!(serde_json::from_str::<RoleInput>("[5]").is_err());
        assert_eq!(
            field_of(roles_from_json("data.role", &serde_json::json!("a,,b")).unwrap_err()),
            "data.role"
        );
        assert_eq!(
            field_of(roles_from_json("data.role", &serde_json::json!(true)).unwrap_err()),
            "data.role"
        );
        let s = statements_from_json("permissions", &serde_json::json!({"user": ["ban"]})).unwrap();
        assert_eq!(s["user"], ["ban"]);
        for bad in [
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"user": "ban"}),
            serde_json::json!({"user": [1]}),
        ] {
            assert_eq!(
                field_of(statements_from_json("permissions", &bad).unwrap_err()),
                "permissions",
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(q("").unwrap(), UserQuery::default());
        assert_eq!(user_query(&[], "search").unwrap(), UserQuery::default());
    }

    #[test]
    fn search_filter_sort_page() {
        let got = q("search=Ann&searchField=name&searchOperator=starts_with&filterField=banned&filterValue=false&sortBy=createdAt&sortDirection=desc&limit=5&offset=10").unwrap();
        assert_eq!(got.conditions.len(), 2);
        assert_eq!(got.conditions[0].field, UserField::Name);
        assert_eq!(got.conditions[0].op, Operator::StartsWith);
        assert_eq!(got.conditions[0].value, FieldValue::Text("Ann".into()));
        assert_eq!(got.conditions[1].value, FieldValue::Bool(false));
        assert_eq!(got.sort, Some((UserField::CreatedAt, true)));
        assert_eq!((got.limit, got.offset), (5, 10));
        // Empty search: no condition. `in` lists: repeated or comma-separated.
        let got = q(
            "search=&filterField=role&filterOperator=in&filterValue=admin,user&filterValue=support",
        )
        .unwrap();
        assert_eq!(got.conditions.len(), 1);
        assert_eq!(
            got.conditions[0].value,
            FieldValue::TextList(vec!["admin".into(), "user".into(), "support".into()])
        );
    }

    #[test]
    fn errors_name_the_parameter() {
        for (query, field) in [
            ("searchField=role", "searchField"),
            ("searchField=nope", "searchField"),
            ("searchOperator=eq", "searchOperator"),
            ("searchOperator=like", "searchOperator"),
            ("filterField=nope&filterValue=x", "filterField"),
            ("filterOperator=like&filterValue=x", "filterOperator"),
            ("filterField=banned", "filterValue"),
            ("filterField=banned&filterValue=maybe", "filterValue"),
            ("filterField=createdAt&filterValue=yesterday", "filterValue"),
            (
                "filterField=banned&filterOperator=in&filterValue=true",
                "filterValue",
            ),
            ("sortBy=password", "sortBy"),
            ("sortDirection=up", "sortDirection"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("offset=99999999999999999999", "offset"),
            ("limit=1&limit=2", "limit"),
            ("search=a&search=b", "search"),
        ] {
            assert_eq!(field_of(q(query).unwrap_err()), field, "{query}");
        }
        let long = format!("search={}", "a".repeat(MAX_SEARCH + 1));
        assert_eq!(field_of(q(&long).unwrap_err()), "search");
    }
}
