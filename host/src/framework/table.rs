//! The route table: every declared path with its operations and fields,
//! printed from the declarations (docs/api.md holds a copy that a test
//! keeps current).

use super::backend::BackendDoc;
use super::openapi::templated_paths;

/// A Markdown table of the backends mounted at the given prefixes.
pub fn markdown(backends: &[(&str, BackendDoc)]) -> String {
    let mut out = String::from("| Path | Operations | Fields | Flags |\n|---|---|---|---|\n");
    for (prefix, backend) in backends {
        for p in &backend.paths {
            let shown = templated_paths(p)
                .into_iter()
                .map(|t| format!("`{prefix}{t}`"))
                .collect::<Vec<_>>()
                .join("<br>");
            let mut ops: Vec<&str> = p.operations.iter().map(|(o, _)| o.as_str()).collect();
            ops.dedup();
            let fields = p
                .fields
                .iter()
                .map(|f| format!("{} ({})", f.name, f.ty.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut flags = Vec::new();
            if p.unauthenticated {
                flags.push("unauthenticated");
            }
            if p.sudo {
                flags.push("sudo");
            }
            if p.has_existence_check {
                flags.push("existence check");
            }
            out.push_str(&format!(
                "| {shown} | {} | {fields} | {} |\n",
                ops.join(", "),
                flags.join(", ")
            ));
        }
    }
    out
}
