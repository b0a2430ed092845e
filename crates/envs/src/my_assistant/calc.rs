//! A small arithmetic evaluator (recursive descent) and the finder of expressions in questions.
//!
//! Grammar, loosest first: `expr = term (("+"|"-") term)*`, `term = unary (("*"|"/"|"%")
//! unary)*`, `unary = ("-"|"+") unary | power`, `power = primary ("^"|"**") unary`,
//! `primary = number | "(" expr ")"`. So `-2^2 = -4` and `2^3^2 = 512`, as in Python;
//! `%` takes the sign of the divisor, as in Python.

/// Characters an expression found in a question may contain.
const EXPRESSION_CHARS: &str = "0123456789+-*/%^(). ";
const OPERATORS: &str = "+-*/%^";

/// Evaluates `expression`; errors are short sentences for the model (`division by zero`).
pub(crate) fn evaluate(expression: &str) -> Result<f64, String> {
    let mut parser = Parser {
        chars: expression.chars().collect(),
        pos: 0,
    };
    parser.skip_spaces();
    if parser.at_end() {
        return Err("empty expression".into());
    }
    let value = parser.expr()?;
    parser.skip_spaces();
    if let Some(ch) = parser.peek() {
        return Err(format!("unexpected '{ch}' at position {}", parser.pos + 1));
    }
    if !value.is_finite() {
        return Err("the result is not a finite number".into());
    }
    Ok(value)
}

/// Formats a result: integers without `.0` (`391`), others in the shortest exact form.
pub(crate) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e16 {
        let text = format!("{value:.0}");
        if text == "-0" { "0".to_owned() } else { text }
    } else if value.abs() >= 1e16 {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// The arithmetic expression a question asks about, evaluated and formatted: the longest
/// run of expression characters that holds an operator and a digit and evaluates.
pub(crate) fn expression_answer(query: &str) -> Option<(String, String)> {
    let mut candidates: Vec<String> = Vec::new();
    let mut current = String::new();
    for ch in query.chars().chain(std::iter::once('\n')) {
        if EXPRESSION_CHARS.contains(ch) {
            current.push(ch);
        } else if !current.is_empty() {
            candidates.push(tidy(&current));
            current.clear();
        }
    }
    candidates.retain(|candidate| {
        candidate.chars().any(|ch| OPERATORS.contains(ch))
            && candidate.chars().any(|ch| ch.is_ascii_digit())
    });
    candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.len()));
    candidates.into_iter().find_map(|candidate| {
        let value = evaluate(&candidate).ok()?;
        Some((candidate, format_number(value)))
    })
}

/// Trims what cannot start or end an expression (sentence dots, dangling operators,
/// unmatched parentheses at the ends).
fn tidy(run: &str) -> String {
    let mut text = run.trim().to_owned();
    loop {
        let before = text.clone();
        text = text
            .trim_end_matches(|ch: char| ch == ' ' || ch == '.' || OPERATORS.contains(ch))
            .trim_start_matches(|ch: char| ch == ' ' || "*/%^.".contains(ch))
            .to_owned();
        let opens = text.matches('(').count();
        let closes = text.matches(')').count();
        if closes > opens && text.ends_with(')') {
            text.pop();
        } else if opens > closes && text.starts_with('(') {
            text.remove(0);
        }
        if text == before {
            return text;
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Consumes `token` (after spaces) if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        let matches = token
            .chars()
            .enumerate()
            .all(|(i, ch)| self.chars.get(self.pos + i) == Some(&ch));
        if matches {
            self.pos += token.chars().count();
        }
        matches
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut value = self.term()?;
        loop {
            if self.eat("+") {
                value += self.term()?;
            } else if self.eat("-") {
                value -= self.term()?;
            } else {
                return Ok(value);
            }
        }
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut value = self.unary()?;
        loop {
            self.skip_spaces();
            // `**` is power, handled below `unary`; do not read it as two multiplications.
            if self.peek() == Some('*') && self.chars.get(self.pos + 1) != Some(&'*') {
                self.pos += 1;
                value *= self.unary()?;
            } else if self.eat("/") {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err("division by zero".into());
                }
                value /= divisor;
            } else if self.eat("%") {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err("modulo by zero".into());
                }
                let remainder = value % divisor;
                value = if remainder != 0.0 && (remainder < 0.0) != (divisor < 0.0) {
                    remainder + divisor
                } else {
                    remainder
                };
            } else {
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.eat("-") {
            return Ok(-self.unary()?);
        }
        if self.eat("+") {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.primary()?;
        if self.eat("^") || self.eat("**") {
            let exponent = self.unary()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, String> {
        self.skip_spaces();
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let value = self.expr()?;
                if !self.eat(")") {
                    return Err(match self.peek() {
                        Some(ch) => {
                            format!("expected ')' at position {}, found '{ch}'", self.pos + 1)
                        }
                        None => "missing ')' at the end".into(),
                    });
                }
                Ok(value)
            }
            Some(ch) if ch.is_ascii_digit() || ch == '.' => self.number(),
            Some(ch) => Err(format!("unexpected '{ch}' at position {}", self.pos + 1)),
            None => Err("unexpected end of expression".into()),
        }
    }

    fn number(&mut self) -> Result<f64, String> {
        let start = self.pos;
        let mut seen_dot = false;
        while let Some(ch) = self.peek() {
            if ch.is_ascii_digit() {
                self.pos += 1;
            } else if ch == '.' && !seen_dot {
                seen_dot = true;
                self.pos += 1;
            } else {
                break;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse::<f64>()
            .map_err(|_| format!("invalid number '{text}' at position {}", start + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expression: &str) -> String {
        evaluate(expression)
            .map(format_number)
            .unwrap_or_else(|error| format!("error: {error}"))
    }

    #[test]
    fn evaluates_with_precedence_and_associativity() {
        let cases = [
            ("17 * 23", "391"),
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("10 - 4 - 3", "3"),
            ("2 ^ 3 ^ 2", "512"),
            ("2 ** 10", "1024"),
            ("-2 ^ 2", "-4"),
            ("2 ^ -1", "0.5"),
            ("--3", "3"),
            ("7 / 2", "3.5"),
            ("0.1 + 0.2", "0.30000000000000004"),
            ("-7 % 3", "2"),
            ("7 % -3", "-2"),
            ("1.5 * 4", "6"),
            (".5 + .5", "1"),
            ("-0 * 5", "0"),
            ("  42  ", "42"),
        ];
        for (expression, expected) in cases {
            assert_eq!(eval(expression), expected, "evaluating {expression:?}");
        }
    }

    #[test]
    fn reports_errors() {
        assert_eq!(eval("1 / 0"), "error: division by zero");
        assert_eq!(eval("5 % 0"), "error: modulo by zero");
        assert_eq!(eval(""), "error: empty expression");
        assert_eq!(eval("1 +"), "error: unexpected end of expression");
        assert_eq!(eval("(1 + 2"), "error: missing ')' at the end");
        assert_eq!(eval("2 x 3"), "error: unexpected 'x' at position 3");
        assert_eq!(eval("1.2.3"), "error: unexpected '.' at position 4");
        assert_eq!(eval("10 ^ 400"), "error: the result is not a finite number");
    }

    #[test]
    fn finds_the_expression_in_a_question() {
        let found = |query: &str| expression_answer(query).map(|(_, value)| value);
        assert_eq!(found("What is 17 * 23?"), Some("391".into()));
        assert_eq!(found("Compute (2 + 3) * 4."), Some("20".into()));
        assert_eq!(found("what's 2^10"), Some("1024".into()));
        assert_eq!(
            found("If I have 3 apples, what is 12 / 4 + 1?"),
            Some("4".into())
        );
        assert_eq!(found("(what is 3+4)"), Some("7".into()));
        assert_eq!(found("What is the capital of France?"), None);
        assert_eq!(found("Is 42 the answer?"), None);
        assert_eq!(found("What is 1 / 0?"), None);
    }
}
