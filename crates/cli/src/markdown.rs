//! A Markdown file as a post: optional front matter (`title`, `status`, `slug` between `---` lines), the
//! body converted to HTML with pulldown-cmark. Without a `title`, a leading `# Heading` becomes the title.

use pulldown_cmark::{Options, Parser, html};

/// What a Markdown file says about the post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub(crate) title: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) slug: Option<String>,
    pub(crate) html: String,
    /// Front-matter keys that were ignored (the caller warns).
    pub(crate) ignored: Vec<String>,
}

/// Reads front matter and converts the rest.
pub(crate) fn parse(text: &str) -> Result<Document, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (front, body) = split_front_matter(text)?;
    let mut document = Document {
        title: None,
        status: None,
        slug: None,
        html: String::new(),
        ignored: Vec::new(),
    };
    for (number, line) in front.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("front matter line {}: expected `key: value`", number + 2))?;
        let value = unquote(value.trim());
        let slot = match key.trim() {
            "title" => &mut document.title,
            "status" => &mut document.status,
            "slug" => &mut document.slug,
            other => {
                document.ignored.push(other.to_owned());
                continue;
            }
        };
        *slot = (!value.is_empty()).then(|| value.to_owned());
    }
    let mut body = body;
    if document.title.is_none()
        && let Some((heading, rest)) = leading_heading(body)
    {
        document.title = Some(heading);
        body = rest;
    }
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_FOOTNOTES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    html::push_html(&mut document.html, Parser::new_ext(body, options));
    Ok(document)
}

/// (front matter lines, body). Front matter starts at the very first line with `---` and ends at the next
/// `---` (or `...`).
fn split_front_matter(text: &str) -> Result<(Vec<&str>, &str), String> {
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if first.trim_end() == "---" => {}
        _ => return Ok((Vec::new(), text)),
    }
    let mut offset = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut front = Vec::new();
    for line in lines {
        offset += line.len();
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Ok((front, &text[offset..]));
        }
        front.push(trimmed);
    }
    Err("the front matter starting with `---` on the first line has no closing `---`".to_owned())
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// A first non-blank line `# Title` and the text after it.
fn leading_heading(body: &str) -> Option<(String, &str)> {
    let start = body.len() - body.trim_start().len();
    let rest = &body[start..];
    let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let title = rest[..line_end].trim_end().strip_prefix("# ")?.trim();
    (!title.is_empty()).then(|| (title.to_owned(), &rest[line_end..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn front_matter_and_markdown() {
        let doc = parse(
            "---\ntitle: \"Hello: world\"\nstatus: publish\nslug: hello-world\ntags: a, b\n---\n\nSome *text* and a [link](https://e.example).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        )
        .unwrap();
        assert_eq!(doc.title.as_deref(), Some("Hello: world"));
        assert_eq!(doc.status.as_deref(), Some("publish"));
        assert_eq!(doc.slug.as_deref(), Some("hello-world"));
        assert_eq!(doc.ignored, ["tags"]);
        assert!(doc.html.contains("<em>text</em>"), "{}", doc.html);
        assert!(doc.html.contains("<a href=\"https://e.example\">link</a>"));
        assert!(doc.html.contains("<table>"));
    }

    #[test]
    fn a_leading_heading_is_the_title_when_none_is_given() {
        let doc = parse("\n# My post\n\nBody.\n").unwrap();
        assert_eq!(doc.title.as_deref(), Some("My post"));
        assert_eq!(doc.html, "<p>Body.</p>\n");
        let doc = parse("---\ntitle: Given\n---\n# Heading stays\n").unwrap();
        assert_eq!(doc.title.as_deref(), Some("Given"));
        assert!(doc.html.contains("<h1>Heading stays</h1>"));
    }

    #[test]
    fn no_front_matter_and_broken_front_matter() {
        let doc = parse("Just text --- with dashes\n").unwrap();
        assert_eq!(doc.title, None);
        assert_eq!(doc.html, "<p>Just text --- with dashes</p>\n");
        assert!(parse("---\ntitle: x\nno end\n").is_err());
        assert!(parse("---\nnot a pair\n---\n").is_err());
    }

    #[test]
    fn raw_html_in_markdown_is_kept_as_the_author_wrote_it() {
        // The site decides what HTML it accepts (WordPress filters by capability); the CLI converts only.
        let doc = parse("<div class=\"note\">hi</div>\n").unwrap();
        assert_eq!(doc.html, "<div class=\"note\">hi</div>\n");
    }
}
