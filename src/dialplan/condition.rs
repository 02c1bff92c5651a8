//! `branch` conditions: `VAR OP VALUE` clauses joined by `and`, parsed once at load and
//! evaluated against a call's variables. Syntax errors carry the character offset of the
//! offending token so the file position can point inside the condition.

pub use super::vars::Var;
use super::vars::Vars;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    StartsWith,
    Contains,
}

impl Op {
    const ALL: [(&'static str, Op); 8] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("starts_with", Op::StartsWith),
        ("contains", Op::Contains),
    ];

    fn orders(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Number(f32),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    var: Var,
    op: Op,
    value: Value,
}

/// Every clause must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    clauses: Vec<Clause>,
}

/// A problem in a condition, `offset` characters into its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Splits into words, keeping quoted text together; each with its character offset.
fn tokens(text: &str) -> Result<Vec<(usize, String, bool)>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = text.chars().enumerate().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some((_, q)) if q == c => break,
                    Some((_, ch)) => word.push(ch),
                    None => {
                        return Err(SyntaxError {
                            offset: start,
                            message: "unterminated quote".into(),
                        });
                    }
                }
            }
            out.push((start, word, true));
        } else {
            let mut word = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            out.push((start, word, false));
        }
    }
    Ok(out)
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, SyntaxError> {
        let tokens = tokens(text)?;
        let mut clauses = Vec::new();
        let mut rest = tokens.as_slice();
        let end = text.chars().count();
        loop {
            let (clause, after) = parse_clause(rest, end)?;
            clauses.push(clause);
            match after {
                [] => return Ok(Condition { clauses }),
                [(_, and, false), more @ ..] if and == "and" => rest = more,
                [(offset, word, _), ..] => {
                    return Err(SyntaxError {
                        offset: *offset,
                        message: format!("expected `and` or the end, found `{word}`"),
                    });
                }
            }
        }
    }

    pub fn holds(&self, vars: &Vars) -> bool {
        self.clauses.iter().all(|c| c.holds(vars))
    }
}

type Token = (usize, String, bool);

fn parse_clause(tokens: &[Token], end: usize) -> Result<(Clause, &[Token]), SyntaxError> {
    let missing = |what: &str, offset: usize| SyntaxError {
        offset,
        message: format!("expected {what}"),
    };
    let [(var_at, var, _), rest @ ..] = tokens else {
        return Err(missing(
            &format!("a variable ({})", Var::ALL.map(Var::name).join(", ")),
            end,
        ));
    };
    let var = Var::parse(var).ok_or_else(|| SyntaxError {
        offset: *var_at,
        message: format!(
            "unknown variable `{var}` (known: {})",
            Var::ALL.map(Var::name).join(", ")
        ),
    })?;
    let [(op_at, op, false), rest @ ..] = rest else {
        return Err(missing(
            "an operator (==, !=, <, <=, >, >=, starts_with, contains)",
            rest.first().map_or(end, |t| t.0),
        ));
    };
    let op = Op::ALL
        .iter()
        .find(|(name, _)| name == op)
        .map(|(_, op)| *op)
        .ok_or_else(|| SyntaxError {
            offset: *op_at,
            message: format!(
                "unknown operator `{op}` (known: ==, !=, <, <=, >, >=, starts_with, contains)"
            ),
        })?;
    let [(value_at, value, _), rest @ ..] = rest else {
        return Err(missing("a value", end));
    };
    let value = if var == Var::Confidence {
        Value::Number(value.parse().map_err(|_| SyntaxError {
            offset: *value_at,
            message: format!("`confidence` is compared with a number, not `{value}`"),
        })?)
    } else if op.orders() {
        return Err(SyntaxError {
            offset: *op_at,
            message: format!(
                "`{}` compares numbers; only `confidence` is a number",
                Op::ALL
                    .iter()
                    .find(|(_, o)| *o == op)
                    .map_or("", |(n, _)| n)
            ),
        });
    } else {
        Value::Text(value.clone())
    };
    Ok((Clause { var, op, value }, rest))
}

impl Clause {
    fn holds(&self, vars: &Vars) -> bool {
        match &self.value {
            Value::Number(n) => match vars.confidence {
                None => self.op == Op::Ne,
                Some(c) => match self.op {
                    Op::Eq => c == *n,
                    Op::Ne => c != *n,
                    Op::Lt => c < *n,
                    Op::Le => c <= *n,
                    Op::Gt => c > *n,
                    Op::Ge => c >= *n,
                    Op::StartsWith | Op::Contains => false,
                },
            },
            Value::Text(t) => {
                let v = vars.text(self.var);
                match self.op {
                    Op::Eq => v == t.as_str(),
                    Op::Ne => v != t.as_str(),
                    Op::StartsWith => v.starts_with(t.as_str()),
                    Op::Contains => v.contains(t.as_str()),
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            caller: "13800001111".into(),
            language: "yue".into(),
            intent: Some("labor".into()),
            confidence: Some(0.55),
            transcript: Some("老細拖糧".into()),
            ..Vars::default()
        }
    }

    #[test]
    fn clauses_and_operators() {
        let holds = |text: &str| Condition::parse(text).expect(text).holds(&vars());
        assert!(holds("confidence < 0.6"));
        assert!(!holds("confidence >= 0.6"));
        assert!(holds("intent == labor and language == 'yue'"));
        assert!(!holds("intent == labor and language == cmn"));
        assert!(holds("caller starts_with 138"));
        assert!(holds("transcript contains \"拖糧\""));
        assert!(holds("digits == \"\""));
        assert!(holds("trunk != pbx1"));
    }

    #[test]
    fn unset_confidence_satisfies_only_inequality() {
        let vars = Vars::default();
        assert!(!Condition::parse("confidence < 1").unwrap().holds(&vars));
        assert!(Condition::parse("confidence != 1").unwrap().holds(&vars));
    }

    #[test]
    fn errors_point_at_the_token() {
        let err = |text: &str| Condition::parse(text).unwrap_err();
        assert_eq!(err("intnt == labor").offset, 0);
        assert_eq!(err("intent = labor").offset, 7);
        assert_eq!(err("intent < labor").offset, 7);
        assert_eq!(err("confidence < high").offset, 13);
        assert_eq!(err("intent == labor or x").offset, 16);
        assert_eq!(err("intent ==").offset, 9);
        assert_eq!(err("intent == 'labor").offset, 10);
    }
}
