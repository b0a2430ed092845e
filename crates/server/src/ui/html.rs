//! HTML building blocks: escaping, the page layout and its stylesheet, small formatters.
//! Every piece of user, model or tool content goes through [`esc`].

use axum::response::Html;
use serde_json::Value;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `<` is escaped so that no content
/// can close the script element.
pub(crate) fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Pretty JSON, escaped for HTML.
pub(crate) fn pretty(value: &Value) -> String {
    esc(&serde_json::to_string_pretty(value).unwrap_or_default())
}

/// A status as a coloured badge.
pub(crate) fn status_badge(status: &str) -> String {
    format!("<span class=\"badge status-{0}\">{0}</span>", esc(status))
}

/// Milliseconds for people: `850 ms`, `2.4 s`, `3 min 5 s`.
pub(crate) fn duration_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A reward with three decimals, or a dash.
pub(crate) fn reward(reward: Option<f64>) -> String {
    reward.map_or_else(|| "–".into(), |r| format!("{r:.3}"))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: i64) -> String {
    let text = rollout_domain::time::rfc3339_from_ms(ms);
    format!("{} {}", &text[..10], &text[11..19])
}

const NAV: [(&str, &str); 5] = [
    ("/environments", "Environments"),
    ("/traces", "Traces"),
    ("/jobs", "Jobs"),
    ("/training", "Training"),
    ("/usage", "Usage"),
];

/// A page with the navigation bar; `active` is the path of the current section.
pub(crate) fn layout(title: &str, active: &str, body: &str) -> Html<String> {
    let nav: String = NAV
        .iter()
        .map(|(href, label)| {
            let class = if *href == active {
                " class=\"active\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{class}>{label}</a>")
        })
        .collect();
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · rollout</title>
<style>{CSS}</style></head>
<body><header class="top"><a class="brand" href="/environments">rollout</a><nav>{nav}</nav>
<form method="post" action="/logout" class="logout"><button type="submit" id="sign-out" class="link">Sign out</button></form></header>
<main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

/// A page without navigation (sign-in).
pub(crate) fn layout_bare(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · rollout</title>
<style>{CSS}</style></head>
<body><header class="top"><span class="brand">rollout</span></header><main>{body}</main></body></html>"#,
        title = esc(title)
    ))
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--accent:#2f5bea;--ok:#127a3d;--bad:#b42318;--warn:#b54708}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;align-items:center;gap:20px;padding:10px 24px;background:#111827;color:#fff;flex-wrap:wrap}
header.top .brand{color:#fff;font-weight:700;font-size:17px;letter-spacing:.3px}
header.top nav{display:flex;gap:16px;flex:1}
header.top nav a{color:#cbd5e1}header.top nav a.active{color:#fff;font-weight:600}
header.top .logout{margin:0}
button.link{background:none;border:0;color:#cbd5e1;cursor:pointer;font:inherit;padding:0}
main{max-width:1120px;margin:0 auto;padding:20px 16px 48px}
h1{font-size:24px;margin:8px 0 12px}h2{font-size:19px;margin:24px 0 10px}h3{font-size:16px;margin:0 0 6px}
.muted{color:var(--muted)}.small{font-size:13px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:14px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.login{max-width:420px;margin:60px auto}
label{display:block;font-weight:600;font-size:13px;margin:10px 0 4px}
input,select,textarea{width:100%;padding:8px 10px;border:1px solid #cfd4dc;border-radius:7px;font:inherit;background:#fff}
input[type=checkbox]{width:auto}
textarea{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;min-height:64px}
button{background:var(--accent);color:#fff;border:0;border-radius:7px;padding:8px 16px;font:inherit;font-weight:600;cursor:pointer;margin-top:12px}
button.secondary{background:#eef2ff;color:var(--accent)}
.req{color:var(--bad)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;background:#eef2f6;color:#344054}
.status-completed,.status-ready,.status-finished,.status-succeeded{background:#dcfae6;color:var(--ok)}.status-failed{background:#fee4e2;color:var(--bad)}
.status-running,.status-queued{background:#e0eaff;color:#3538cd}.status-timed_out,.status-cancelled,.status-cancelling{background:#fef0c7;color:var(--warn)}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse;background:#fff}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top;font-size:14px}
th{font-size:12px;text-transform:uppercase;letter-spacing:.4px;color:var(--muted)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow:auto;font-size:13px;line-height:1.45;margin:6px 0;white-space:pre-wrap;word-break:break-word}
pre.light{background:#f8fafc;color:#1d2330;border:1px solid var(--line)}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.15fr);gap:18px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 18px}
figure{margin:14px 0}
.stats{display:flex;flex-wrap:wrap;gap:10px 26px;margin:8px 0}
.stat .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px}.stat .value{font-size:18px;font-weight:600}
.tabs{display:flex;gap:4px;margin-top:4px;flex-wrap:wrap}
.tabs button{margin:0;background:#eef2f6;color:#344054;padding:5px 12px;font-size:13px}
.tabs button.active{background:#111827;color:#fff}
.snippet-head{display:flex;justify-content:space-between;align-items:center;gap:8px;flex-wrap:wrap}
.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px 12px;align-items:end}
.filters button{margin:0}
.step{border-left:3px solid #cfd4dc;padding:6px 0 6px 14px;margin:10px 0}
.step.model{border-color:#7a5af8}.step.tool{border-color:#2f5bea}.step.error{border-color:var(--bad);background:#fff5f4}
.step.eval{border-color:var(--ok)}.step.meta{border-color:#e4e7ec}
.step .head{display:flex;gap:10px;flex-wrap:wrap;align-items:baseline}
.step .head .muted{font-size:13px}
.tool-error pre{background:#fff1f0;color:var(--bad);border:1px solid #fecdca}
details>summary{cursor:pointer;font-weight:600}
.error-text{color:var(--bad);font-weight:600}
.text{white-space:pre-wrap;word-break:break-word}
.scenario-card .desc{margin:0 0 6px}
.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
.live{color:#3538cd;font-weight:600}
progress{width:100%;height:10px;accent-color:var(--accent)}
#lineage th{width:140px;text-transform:none;font-size:13px}
table.metrics td.num,.nowrap{white-space:nowrap}
#comparison .stat .label{text-transform:none}
@media (max-width:760px){.grid,.charts{grid-template-columns:1fr}main{padding:12px 10px 40px}header.top{padding:10px 12px;gap:12px}th,td{padding:6px}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(
            script_json(&serde_json::json!("</script>")),
            "\"\\u003c/script\\u003e\""
        );
        assert_eq!(url_encode("/traces?a=b c"), "/traces%3Fa%3Db%20c");
    }
}
