//! The method list of `ebm train --help`, from the library's registry.

use ebm::objective::METHODS;

/// "Methods:" and one line per registered method.
pub fn methods() -> String {
    let width = METHODS.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut text = String::from("Methods (--method, or `name` in the [method] table):\n");
    for m in METHODS {
        text.push_str(&format!("  {:width$}  {}\n", m.name, m.about));
    }
    text.push_str(
        "\nA run directory holds config.toml (the resolved settings), metrics.jsonl and \
         checkpoint.safetensors; `ebm train --resume DIR` continues it bit for bit.",
    );
    text
}
