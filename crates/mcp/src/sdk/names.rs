//! Name rules shared with hud 0.5: environment name normalisation and fnmatch-style patterns.

/// Normalizes an environment name exactly like hud's `Environment._normalize_name`.
///
/// Lowercase, spaces and `_` become `-`, every character outside `[a-z0-9-]` is dropped, runs of
/// `-` collapse and the ends are trimmed; an empty result becomes `"environment"`.
pub fn normalize_env_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.trim().to_lowercase().chars() {
        let ch = if ch == ' ' || ch == '_' { '-' } else { ch };
        if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
            continue;
        }
        if ch == '-' && out.ends_with('-') {
            continue;
        }
        out.push(ch);
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "environment".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Matches `name` against a shell-style pattern like Python's `fnmatch.fnmatchcase`.
///
/// Supports `*`, `?`, `[abc]`, `[a-z]` and `[!abc]`; an unclosed `[` matches a literal `[`.
pub(crate) fn fnmatch(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| match_from(rest, &name[skip..])),
        '?' => !name.is_empty() && match_from(rest, &name[1..]),
        '[' => match parse_class(rest) {
            Some((class, after)) => match name.split_first() {
                Some((&ch, name_rest)) => class.matches(ch) && match_from(after, name_rest),
                None => false,
            },
            None => name.first() == Some(&'[') && match_from(rest, &name[1..]),
        },
        literal => name.first() == Some(&literal) && match_from(rest, &name[1..]),
    }
}

struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, ch: char) -> bool {
        let inside = self
            .ranges
            .iter()
            .any(|&(low, high)| low <= ch && ch <= high);
        inside != self.negated
    }
}

/// Parses the inside of `[...]` (after the `[`); returns the class and the pattern after `]`.
fn parse_class(pattern: &[char]) -> Option<(CharClass, &[char])> {
    let mut idx = 0;
    let negated = pattern.first() == Some(&'!');
    if negated {
        idx += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while idx < pattern.len() {
        let ch = pattern[idx];
        if ch == ']' && !first {
            return Some((CharClass { negated, ranges }, &pattern[idx + 1..]));
        }
        first = false;
        if idx + 2 < pattern.len() && pattern[idx + 1] == '-' && pattern[idx + 2] != ']' {
            ranges.push((ch, pattern[idx + 2]));
            idx += 3;
        } else {
            ranges.push((ch, ch));
            idx += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_normalize_like_hud() {
        let cases = [
            ("My Assistant", "my-assistant"),
            ("my_assistant", "my-assistant"),
            ("  Org/My.Env v2 ", "orgmyenv-v2"),
            ("___", "environment"),
            ("A--B__c", "a-b-c"),
            ("café:bar", "cafbar"),
            ("", "environment"),
        ];
        for (given, expected) in cases {
            assert_eq!(normalize_env_name(given), expected, "normalizing {given:?}");
        }
    }

    #[test]
    fn fnmatch_handles_wildcards_and_classes() {
        assert!(fnmatch("*", "lookup"));
        assert!(fnmatch("look*", "lookup"));
        assert!(!fnmatch("look*", "calculator"));
        assert!(fnmatch("l?okup", "lookup"));
        assert!(fnmatch("[lc]*", "calculator"));
        assert!(!fnmatch("[!lc]*", "calculator"));
        assert!(fnmatch("tool_[0-9]", "tool_7"));
        assert!(!fnmatch("tool_[0-9]", "tool_x"));
        assert!(fnmatch("a[", "a["));
        assert!(!fnmatch("lookup", "Lookup"));
        assert!(fnmatch("", ""));
    }
}
