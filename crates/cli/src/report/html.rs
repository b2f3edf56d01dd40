//! The self-contained `report.html`: figures as base64 data URIs, the metrics table, the
//! config verbatim. Every piece of text from the run is escaped.

use super::figures::short;
use super::metrics::{MetricSummary, higher_is_better};
use base64::Engine;
use std::fmt::Write;

/// A figure to embed: its PNG bytes, alternative text and caption.
pub struct Figure<'a> {
    /// The PNG file's bytes.
    pub png: &'a [u8],
    /// What it shows, for the `alt` attribute and the caption.
    pub caption: String,
}

/// What the page shows.
pub struct Page<'a> {
    /// The run's name (its directory).
    pub title: &'a str,
    /// The metrics table's rows.
    pub metrics: &'a [MetricSummary],
    /// Records read from `metrics.jsonl`.
    pub records: usize,
    /// The figures, in order.
    pub figures: &'a [Figure<'a>],
    /// Lines about what was left out and why.
    pub notes: &'a [String],
    /// `config.toml` as written, if there is one.
    pub config: Option<&'a str>,
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A PNG as a data URI.
pub fn data_uri(png: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    format!("data:image/png;base64,{b64}")
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th:first-child,td:first-child{text-align:left}img{max-width:100%}\
pre{background:#f6f6f6;padding:1em;overflow:auto}figcaption{color:#555}";

/// The page's HTML.
pub fn render(page: &Page<'_>) -> String {
    let mut h = String::new();
    let title = escape(page.title);
    // Writing to a String cannot fail.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n\
         <title>ebm run {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>ebm run {title}</h1>\n"
    );

    // The metrics table.
    let _ = write!(
        h,
        "<h2>Metrics</h2>\n<p>{} records in metrics.jsonl. Best is the lowest value, the \
         highest for accuracies, acceptance rates and likelihoods.</p>\n<table>\n<thead><tr>\
         <th>metric</th><th>last</th><th>at step</th><th>best</th><th>at step</th></tr>\
         </thead>\n<tbody>\n",
        page.records
    );
    for m in page.metrics {
        let arrow = if higher_is_better(&m.name) {
            " (max)"
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr><td>{}{arrow}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.name),
            short(m.last.1),
            short(m.last.0),
            short(m.best.1),
            short(m.best.0)
        );
    }
    h.push_str("</tbody>\n</table>\n");

    // Figures and notes.
    h.push_str("<h2>Figures</h2>\n");
    for f in page.figures {
        let caption = escape(&f.caption);
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"{caption}\" /><figcaption>{caption}</figcaption>\
             </figure>",
            data_uri(f.png)
        );
    }
    for note in page.notes {
        let _ = writeln!(h, "<p>{}</p>", escape(note));
    }

    // The config, verbatim.
    h.push_str("<h2>Config</h2>\n");
    match page.config {
        Some(text) => {
            let _ = writeln!(h, "<pre>{}</pre>", escape(text));
        }
        None => h.push_str("<p>No config.toml in the run directory.</p>\n"),
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<b a=\"1\">&'"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
        let page = Page {
            title: "run<1>",
            metrics: &[],
            records: 0,
            figures: &[],
            notes: &["a < b".into()],
            config: Some("name = \"</pre><script>\""),
        };
        let html = render(&page);
        assert!(!html.contains("<script>") && !html.contains("run<1>"));
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;") && html.contains("a &lt; b"));
        assert_eq!(data_uri(b"\x89PNG"), "data:image/png;base64,iVBORw==");
    }
}
