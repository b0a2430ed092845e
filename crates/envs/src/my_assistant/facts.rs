//! The facts `lookup` knows and the grader uses, matched by keywords.

/// One fact: the keywords that identify its topic and the answer.
pub(crate) struct Fact {
    /// A readable name of the topic, listed when a lookup fails.
    pub(crate) topic: &'static str,
    /// Any one group matches when all its keywords occur in the text (case-insensitively).
    keyword_groups: &'static [&'static [&'static str]],
    /// The answer a grader expects to find in a reply.
    pub(crate) answer: &'static str,
    /// A unit or note shown with the answer by `lookup`.
    unit: Option<&'static str>,
}

impl Fact {
    /// What `lookup` returns: the answer with its unit.
    pub(crate) fn describe(&self) -> String {
        match self.unit {
            Some(unit) => format!("{} {unit}", self.answer),
            None => self.answer.to_owned(),
        }
    }

    fn matches(&self, lowercase_text: &str) -> bool {
        self.keyword_groups
            .iter()
            .any(|group| group.iter().all(|keyword| lowercase_text.contains(keyword)))
    }
}

pub(crate) const FACTS: &[Fact] = &[
    Fact {
        topic: "capital of France",
        keyword_groups: &[&["capital", "france"]],
        answer: "Paris",
        unit: None,
    },
    Fact {
        topic: "largest planet",
        keyword_groups: &[&["largest", "planet"], &["biggest", "planet"]],
        answer: "Jupiter",
        unit: None,
    },
    Fact {
        topic: "capital of Japan",
        keyword_groups: &[&["capital", "japan"]],
        answer: "Tokyo",
        unit: None,
    },
    Fact {
        topic: "speed of light",
        keyword_groups: &[&["speed", "light"]],
        answer: "299792458",
        unit: Some("m/s"),
    },
    Fact {
        topic: "chemical symbol for gold",
        keyword_groups: &[&["symbol", "gold"], &["chemical", "gold"]],
        answer: "Au",
        unit: None,
    },
    Fact {
        topic: "author of Hamlet",
        keyword_groups: &[&["hamlet"]],
        answer: "William Shakespeare",
        unit: None,
    },
    Fact {
        topic: "tallest mountain",
        keyword_groups: &[&["tallest", "mountain"], &["highest", "mountain"]],
        answer: "Mount Everest",
        unit: None,
    },
    Fact {
        topic: "boiling point of water",
        keyword_groups: &[&["boil", "water"]],
        answer: "100",
        unit: Some("°C"),
    },
];

/// The fact whose keywords occur in `text` (a topic or a whole question).
pub(crate) fn find(text: &str) -> Option<&'static Fact> {
    let lowercase = text.to_lowercase();
    FACTS.iter().find(|fact| fact.matches(&lowercase))
}

/// The known topics, for error messages.
pub(crate) fn topics() -> String {
    FACTS
        .iter()
        .map(|fact| fact.topic)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_questions_find_their_facts() {
        let cases = [
            ("capital of France", "Paris"),
            ("What is the capital of FRANCE?", "Paris"),
            (
                "Which is the biggest planet in the solar system?",
                "Jupiter",
            ),
            ("capital of Japan", "Tokyo"),
            ("What is the speed of light in vacuum?", "299792458"),
            ("chemical symbol for gold", "Au"),
            ("Who wrote Hamlet?", "William Shakespeare"),
            ("highest mountain on Earth", "Mount Everest"),
            ("At what temperature does water boil?", "100"),
        ];
        for (text, answer) in cases {
            assert_eq!(
                find(text).map(|fact| fact.answer),
                Some(answer),
                "looking up {text:?}"
            );
        }
        assert!(find("capital of Germany").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn lookup_text_has_units() {
        assert_eq!(find("speed of light").unwrap().describe(), "299792458 m/s");
        assert_eq!(find("boiling point of water").unwrap().describe(), "100 °C");
        assert_eq!(find("capital of France").unwrap().describe(), "Paris");
        assert!(topics().starts_with("capital of France, largest planet"));
    }
}
