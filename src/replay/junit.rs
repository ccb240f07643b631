//! The JUnit XML file (`--junit`), the format every CI shows as a test list: one test suite,
//! one test case per call, named by method, target and file line, classed by its row
//! (`replay.user-api.read`). A differing call is a `failure` whose message names the paths
//! and their mapping lines, with both values in its text; a call without an answer is an
//! `error`; a write not replayed is `skipped`; a noise-only match passes, the noise paths in
//! its `system-out`.

use std::fmt::Write;

use super::report::Ran;
use super::verdict::Kind;

pub fn render(ran: &Ran) -> String {
    let s = &ran.summary;
    let skipped = ran
        .outcomes
        .iter()
        .filter(|o| o.judged.kind == Kind::Skipped)
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"legacy-gateway replay\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        ran.outcomes.len(),
        s.differing,
        s.failed,
        s.seconds
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"replay against {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        escape(&ran.target),
        ran.outcomes.len(),
        s.differing,
        s.failed,
        s.seconds
    );
    for o in &ran.outcomes {
        let _ = write!(
            out,
            "    <testcase classname=\"replay.{}\" name=\"{}\" file=\"{}\" line=\"{}\"",
            escape(&o.row()),
            escape(&o.name()),
            escape(&o.at.file),
            o.at.line
        );
        let details = || {
            o.judged
                .differences
                .iter()
                .map(|d| {
                    format!(
                        "{}: captured {} / replayed {}{}",
                        d.named(),
                        d.captured,
                        d.replayed,
                        d.v4_pointer
                            .as_ref()
                            .map_or(String::new(), |p| format!(" (v4 {p})"))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let paths = || {
            o.judged
                .differences
                .iter()
                .map(|d| d.named())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match o.judged.kind {
            Kind::Matched => out.push_str("/>\n"),
            Kind::Noise => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>differs only in noise: {}</system-out>\n    </testcase>",
                    escape(&o.judged.noise.join(", "))
                );
            }
            Kind::Differing => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"difference\" message=\"differs at {}\">{}</failure>\n    </testcase>",
                    escape(&paths()),
                    escape(&details())
                );
            }
            Kind::Failed => {
                let _ = writeln!(
                    out,
                    ">\n      <error type=\"no answer\" message=\"{}\"/>\n    </testcase>",
                    escape(&details())
                );
            }
            Kind::Skipped => {
                out.push_str(
                    ">\n      <skipped message=\"a write: replayed only with --writes\"/>\n    </testcase>\n",
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// XML's five escapes, and the control characters XML 1.0 cannot hold dropped (a captured
/// value may contain any).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            super::escape("<a href=\"x\">&'\u{1}\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#10;"
        );
    }
}
