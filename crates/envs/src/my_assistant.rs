//! `my-assistant`: a calculator, a fact lookup, and a question-answering scenario graded by a
//! small oracle (the query's arithmetic, or the fact it asks for).

mod calc;
mod facts;

use rollout_mcp::sdk::{
    Answer, Environment, Evaluation, Scenario, ScenarioContext, Tool, ToolContext, ToolFailure,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::{Mutex, PoisonError};

/// The environment's name, as served (`serverInfo.name` and scenario id prefix).
pub(crate) const NAME: &str = "my-assistant";

#[derive(Deserialize, JsonSchema)]
struct CalculatorArgs {
    /// The expression, e.g. `17 * 23` or `(2 + 3) ^ 2`.
    expression: String,
}

#[derive(Deserialize, JsonSchema)]
struct LookupArgs {
    /// The topic, e.g. `capital of France`.
    topic: String,
}

#[derive(Deserialize, JsonSchema)]
struct RespondArgs {
    /// The final answer to the question.
    answer: String,
}

/// The last answer given through the `respond` tool in this session. HUD's documented client
/// flow answers by calling `respond` instead of submitting, as hud environments commonly let
/// agents do; the scenario grades it when no answer text was submitted.
#[derive(Debug, Default)]
struct Responded(Mutex<Option<String>>);

impl Responded {
    fn set(&self, answer: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Deserialize, JsonSchema)]
struct AnswerQuestionArgs {
    /// The question to answer.
    query: String,
}

/// Builds the `my-assistant` environment.
pub fn my_assistant() -> Environment {
    Environment::new(NAME)
        .tool(Tool::new(
            "calculator",
            "Evaluate an arithmetic expression such as '17 * 23'. Supports + - * / % ^ (power), \
             unary minus, parentheses and decimals.",
            |args: CalculatorArgs| async move {
                calc::evaluate(&args.expression)
                    .map(calc::format_number)
                    .map_err(ToolFailure::from)
            },
        ))
        .tool(Tool::new(
            "lookup",
            "Look up a fact, such as 'capital of France' or 'speed of light'.",
            |args: LookupArgs| async move {
                match facts::find(&args.topic) {
                    Some(fact) => Ok(fact.describe()),
                    None => Err(ToolFailure::new(format!(
                        "unknown topic '{}'; known topics: {}",
                        args.topic,
                        facts::topics()
                    ))),
                }
            },
        ))
        .tool(Tool::with_context(
            "respond",
            "Give the final answer to the question.",
            |args: RespondArgs, context: ToolContext| async move {
                context.state::<Responded>().set(args.answer);
                "Answer recorded."
            },
        ))
        .scenario(Scenario::new(
            "answer_question",
            "Answer a factual or arithmetic question.",
            |args: AnswerQuestionArgs, ctx: ScenarioContext| async move {
                let submitted = ctx.prompt(prompt_for(&args.query)).await;
                let answer = answer_to_grade(submitted, ctx.state::<Responded>().get());
                grade(&args.query, &answer)
            },
        ))
}

fn prompt_for(query: &str) -> String {
    format!(
        "Answer this question: {query}\n\n\
         You can use the tools `calculator` (arithmetic) and `lookup` (facts). \
         Reply with the final answer."
    )
}

/// The submitted answer, or the one given through `respond` when no text was submitted
/// (nothing at all, or an empty final reply after answering with the tool).
fn answer_to_grade(submitted: Answer, responded: Option<String>) -> Answer {
    match responded {
        Some(text) if submitted.text().trim().is_empty() => {
            Answer::new(Some(serde_json::Value::String(text)))
        }
        _ => submitted,
    }
}

/// What the grader expects, and where it came from.
struct Expected {
    value: String,
    source: &'static str,
}

fn expected_answer(query: &str) -> Option<Expected> {
    if let Some((_, value)) = calc::expression_answer(query) {
        return Some(Expected {
            value,
            source: "expression",
        });
    }
    facts::find(query).map(|fact| Expected {
        value: fact.answer.to_owned(),
        source: "fact",
    })
}

/// Grades `answer` against what the query asks for.
fn grade(query: &str, answer: &Answer) -> Evaluation {
    let text = answer.text();
    let Some(expected) = expected_answer(query) else {
        return Evaluation::reward(0.0)
            .with_content(format!(
                "no expected answer can be derived from the query '{query}': it has no arithmetic \
                 expression and asks about no known topic ({})",
                facts::topics()
            ))
            .with_info("query", query)
            .with_info("answer", text)
            .with_subscore("correct", 1.0, 0.0);
    };
    let correct = contains_answer(&text, &expected.value);
    let reward = if correct { 1.0 } else { 0.0 };
    Evaluation::reward(reward)
        .with_content(format!(
            "expected '{}' in the answer, got '{text}'",
            expected.value
        ))
        .with_info("expected", expected.value.as_str())
        .with_info("answer", text.as_str())
        .with_info("source", expected.source)
        .with_subscore("correct", 1.0, reward)
}

/// Whether `answer` contains `expected`, case-insensitively, also after removing thousands
/// separators (`1,234` → `1234`). A number must appear whole: `391` is not in `3910`.
fn contains_answer(answer: &str, expected: &str) -> bool {
    let expected = expected.to_lowercase();
    let answer = answer.to_lowercase();
    [answer.clone(), remove_thousands_separators(&answer)]
        .iter()
        .any(|candidate| contains_whole(candidate, &expected))
}

fn contains_whole(haystack: &str, needle: &str) -> bool {
    let numeric = needle.chars().last().is_some_and(|ch| ch.is_ascii_digit());
    haystack.match_indices(needle).any(|(start, _)| {
        if !numeric {
            return true;
        }
        let before = haystack[..start].chars().next_back();
        let mut after = haystack[start + needle.len()..].chars();
        let next = after.next();
        let digit_before = before.is_some_and(|ch| ch.is_ascii_digit());
        let digit_after = next.is_some_and(|ch| ch.is_ascii_digit())
            || (next == Some('.') && after.next().is_some_and(|ch| ch.is_ascii_digit()));
        !digit_before && !digit_after
    })
}

/// Drops commas that sit between digits.
fn remove_thousands_separators(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(idx, &ch)| {
            let between_digits = idx > 0
                && chars[idx - 1].is_ascii_digit()
                && chars.get(idx + 1).is_some_and(char::is_ascii_digit);
            !(ch == ',' && between_digits)
        })
        .map(|(_, &ch)| ch)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(text: &str) -> Answer {
        Answer::new(Some(json!(text)))
    }

    #[test]
    fn grades_arithmetic_answers() {
        let evaluation = grade("What is 17 * 23?", &answer("It is 391."));
        assert_eq!(evaluation.reward, 1.0);
        assert_eq!(
            evaluation.content.as_deref(),
            Some("expected '391' in the answer, got 'It is 391.'")
        );
        assert_eq!(evaluation.info["expected"], json!("391"));
        assert_eq!(evaluation.info["answer"], json!("It is 391."));
        let subscores = serde_json::to_value(&evaluation.subscores).unwrap();
        assert_eq!(
            subscores,
            json!([{"name": "correct", "weight": 1.0, "value": 1.0}])
        );
        assert_eq!(grade("What is 17 * 23?", &answer("3910")).reward, 0.0);
        assert_eq!(grade("What is 17 * 23?", &answer("391.5")).reward, 0.0);
        assert_eq!(grade("What is 1000 + 234?", &answer("1,234")).reward, 1.0);
        assert_eq!(grade("What is 17 * 23?", &Answer::default()).reward, 0.0);
    }

    #[test]
    fn a_respond_answer_is_graded_when_no_text_was_submitted() {
        let responded = Some("391".to_string());
        assert_eq!(
            answer_to_grade(Answer::default(), responded.clone()).text(),
            "391"
        );
        assert_eq!(answer_to_grade(answer(""), responded.clone()).text(), "391");
        assert_eq!(answer_to_grade(answer("392"), responded).text(), "392");
        assert_eq!(answer_to_grade(Answer::default(), None).text(), "");
    }

    #[test]
    fn grades_fact_answers_case_insensitively() {
        assert_eq!(
            grade("What is the capital of France?", &answer("paris")).reward,
            1.0
        );
        assert_eq!(
            grade("What is the capital of France?", &answer("Lyon")).reward,
            0.0
        );
        assert_eq!(
            grade("Who wrote Hamlet?", &answer("William Shakespeare wrote it")).reward,
            1.0
        );
        let speed = grade("What is the speed of light?", &answer("299,792,458 m/s"));
        assert_eq!(speed.reward, 1.0);
        assert_eq!(speed.info["source"], json!("fact"));
    }

    #[test]
    fn a_query_without_expected_answer_scores_zero_and_says_why() {
        let evaluation = grade("What is the meaning of life?", &answer("42"));
        assert_eq!(evaluation.reward, 0.0);
        let content = evaluation.content.unwrap_or_default();
        assert!(
            content.starts_with("no expected answer can be derived"),
            "{content}"
        );
    }

    #[test]
    fn thousands_separators_between_digits_only() {
        assert_eq!(
            remove_thousands_separators("1,234,567 and a, b"),
            "1234567 and a, b"
        );
    }
}
