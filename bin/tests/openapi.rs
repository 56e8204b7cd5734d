//! `docs/openapi.yaml` is the API as served: every route the server
//! registers (`.route(PATH, web::METHOD()...)` in `bin/src/api/handlers.rs`)
//! is described, and nothing else is.

use std::collections::BTreeSet;

fn served() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/api/handlers.rs");
    let mut routes = BTreeSet::new();
    for part in source.split(".route(\"").skip(1) {
        let Some((path, rest)) = part.split_once('"') else {
            continue;
        };
        let method = rest
            .split_once("web::")
            .and_then(|(_, m)| m.split_once("()"))
            .map(|(m, _)| m.to_string())
            .unwrap_or_else(|| panic!("no method for {path}"));
        routes.insert((method, path.to_string()));
    }
    routes
}

#[test]
fn the_openapi_description_lists_exactly_the_served_routes() {
    let doc: serde_json::Value =
        serde_norway::from_str(include_str!("../../docs/openapi.yaml")).expect("YAML parses");
    assert_eq!(doc["openapi"], "3.0.3");
    let methods = ["get", "post", "put", "delete", "patch"];
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, op) in item.as_object().expect("path item") {
            if methods.contains(&key.as_str()) {
                assert!(op["responses"].is_object(), "{key} {path} has responses");
                described.insert((key.clone(), path.clone()));
            }
        }
    }
    let served = served();
    assert!(served.len() >= 14, "{served:?}");
    assert_eq!(described, served, "docs/openapi.yaml against the router");
}
