//! Integer constant expressions as the BITS headers write them: literals with C suffixes,
//! the usual operators, casts to the Windows integer types (`(UINT64)(-1)`,
//! `((HRESULT)0x80200001)`), mingw-w64's `__MSABI_LONG(x)` and `_HRESULT_TYPEDEF_(x)`,
//! names of other macros, and `defined(X)` in `#if` lines.

use anyhow::{Result, bail};

/// How names inside an expression are resolved.
pub trait Scope {
    /// The value of a macro or enumerator, or `None` when the name is unknown.
    fn value_of(&self, name: &str) -> Result<Option<i128>>;
    fn is_defined(&self, name: &str) -> bool;
}

/// Evaluates `text`; unknown names are an error unless `unknown_is_zero` (as in `#if`).
pub fn evaluate(text: &str, scope: &dyn Scope, unknown_is_zero: bool) -> Result<i128> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        scope,
        unknown_is_zero,
    };
    let value = parser.expression(0)?;
    if parser.position != parser.tokens.len() {
        bail!(
            "unexpected {:?} in {text:?}",
            parser.tokens[parser.position]
        );
    }
    Ok(value)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Number(i128),
    Name(String),
    Operator(&'static str),
}

const OPERATORS: [&str; 24] = [
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "+", "-", "*", "/", "%", "<", ">",
    "&", "|", "^", "~", "!", "?", ":",
];

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let first = rest.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            tokens.push(Token::Number(number(&rest[..end])?));
            rest = &rest[end..];
        } else if first.is_ascii_alphabetic() || first == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            tokens.push(Token::Name(rest[..end].to_owned()));
            rest = &rest[end..];
        } else if let Some(operator) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Operator(operator));
            rest = &rest[operator.len()..];
        } else {
            bail!("cannot read {rest:?} as part of a constant expression");
        }
        rest = rest.trim_start();
    }
    Ok(tokens)
}

fn number(literal: &str) -> Result<i128> {
    let digits = literal.trim_end_matches(['u', 'U', 'l', 'L']);
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse()
    };
    parsed.map_err(|_| anyhow::anyhow!("bad integer literal {literal:?}"))
}

/// The value `value` has once converted to the named integer type, if it is one.
fn cast(type_name: &str, value: i128) -> Option<i128> {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "these are C's conversions, wrapping on purpose"
    )]
    Some(match type_name {
        "HRESULT" | "LONG" | "INT" | "int" | "long" | "SCODE" | "BOOL" | "WINBOOL" => {
            i128::from(value as i32)
        }
        "ULONG" | "DWORD" | "UINT" | "unsigned" => i128::from(value as u32),
        "UINT64" | "ULONGLONG" | "DWORD64" => i128::from(value as u64),
        "LONGLONG" | "INT64" => i128::from(value as i64),
        "USHORT" | "WORD" | "VARTYPE" => i128::from(value as u16),
        "SHORT" => i128::from(value as i16),
        "BYTE" => i128::from(value as u8),
        _ => return None,
    })
}

/// Function-like macros of the Windows headers that only convert their argument.
fn conversion_macro(name: &str) -> Option<&'static str> {
    match name {
        "__MSABI_LONG" => Some("LONG"),
        "_HRESULT_TYPEDEF_" => Some("HRESULT"),
        _ => None,
    }
}

/// Limits of <stdint.h> that cbindgen writes for `u64::MAX` and friends.
fn stdint_limit(name: &str) -> Option<i128> {
    Some(match name {
        "UINT64_MAX" => i128::from(u64::MAX),
        "UINT32_MAX" => i128::from(u32::MAX),
        "UINT16_MAX" => i128::from(u16::MAX),
        "INT64_MAX" => i128::from(i64::MAX),
        "INT32_MAX" => i128::from(i32::MAX),
        _ => return None,
    })
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    scope: &'a dyn Scope,
    unknown_is_zero: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Result<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token.ok_or_else(|| anyhow::anyhow!("the expression ends too early"))
    }

    fn expect(&mut self, operator: &str) -> Result<()> {
        match self.next()? {
            Token::Operator(found) if found == operator => Ok(()),
            other => bail!("expected {operator:?}, found {other:?}"),
        }
    }

    /// Precedence climbing over C's binary operators (and `?:`).
    fn expression(&mut self, min_precedence: u8) -> Result<i128> {
        let mut left = self.unary()?;
        while let Some(Token::Operator(operator)) = self.peek().cloned() {
            let Some(precedence) = binary_precedence(operator) else {
                break;
            };
            if precedence < min_precedence {
                break;
            }
            self.position += 1;
            if operator == "?" {
                let if_true = self.expression(0)?;
                self.expect(":")?;
                let if_false = self.expression(precedence)?;
                left = if left != 0 { if_true } else { if_false };
                continue;
            }
            let right = self.expression(precedence + 1)?;
            left = apply(operator, left, right)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<i128> {
        match self.next()? {
            Token::Number(value) => Ok(value),
            Token::Operator("-") => Ok(-self.unary()?),
            Token::Operator("+") => self.unary(),
            Token::Operator("!") => Ok(i128::from(self.unary()? == 0)),
            Token::Operator("~") => Ok(!self.unary()?),
            Token::Operator("(") => {
                if let (Some(Token::Name(name)), Some(Token::Operator(")"))) = (
                    self.tokens.get(self.position).cloned(),
                    self.tokens.get(self.position + 1),
                ) && cast(&name, 0).is_some()
                {
                    self.position += 2;
                    let operand = self.unary()?;
                    return cast(&name, operand).ok_or_else(|| anyhow::anyhow!("cast"));
                }
                let value = self.expression(0)?;
                self.expect(")")?;
                Ok(value)
            }
            Token::Name(name) if name == "defined" => {
                let parenthesized = self.peek() == Some(&Token::Operator("("));
                if parenthesized {
                    self.position += 1;
                }
                let Token::Name(macro_name) = self.next()? else {
                    bail!("defined needs a name");
                };
                if parenthesized {
                    self.expect(")")?;
                }
                Ok(i128::from(self.scope.is_defined(&macro_name)))
            }
            Token::Name(name) => {
                if let Some(type_name) = conversion_macro(&name) {
                    self.expect("(")?;
                    let value = self.expression(0)?;
                    self.expect(")")?;
                    return cast(type_name, value).ok_or_else(|| anyhow::anyhow!("cast"));
                }
                if let Some(limit) = stdint_limit(&name) {
                    return Ok(limit);
                }
                match self.scope.value_of(&name)? {
                    Some(value) => Ok(value),
                    None if self.unknown_is_zero => Ok(0),
                    None => bail!("{name} is not a known constant"),
                }
            }
            Token::Operator(operator) => bail!("unexpected {operator:?}"),
        }
    }
}

fn binary_precedence(operator: &str) -> Option<u8> {
    Some(match operator {
        "?" => 1,
        "||" => 2,
        "&&" => 3,
        "|" => 4,
        "^" => 5,
        "&" => 6,
        "==" | "!=" => 7,
        "<" | ">" | "<=" | ">=" => 8,
        "<<" | ">>" => 9,
        "+" | "-" => 10,
        "*" | "/" | "%" => 11,
        _ => return None,
    })
}

fn apply(operator: &str, left: i128, right: i128) -> Result<i128> {
    let shift = || u32::try_from(right).map_err(|_| anyhow::anyhow!("bad shift {right}"));
    Ok(match operator {
        "||" => i128::from(left != 0 || right != 0),
        "&&" => i128::from(left != 0 && right != 0),
        "|" => left | right,
        "^" => left ^ right,
        "&" => left & right,
        "==" => i128::from(left == right),
        "!=" => i128::from(left != right),
        "<" => i128::from(left < right),
        ">" => i128::from(left > right),
        "<=" => i128::from(left <= right),
        ">=" => i128::from(left >= right),
        "<<" => left << shift()?,
        ">>" => left >> shift()?,
        "+" => left + right,
        "-" => left - right,
        "*" => left * right,
        "/" | "%" if right == 0 => bail!("division by zero"),
        "/" => left / right,
        "%" => left % right,
        _ => bail!("unknown operator {operator}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Names(HashMap<&'static str, i128>);

    impl Scope for Names {
        fn value_of(&self, name: &str) -> Result<Option<i128>> {
            Ok(self.0.get(name).copied())
        }
        fn is_defined(&self, name: &str) -> bool {
            self.0.contains_key(name)
        }
    }

    fn eval(text: &str) -> Result<i128> {
        let names = Names(HashMap::from([("A", 1), ("B", 4)]));
        evaluate(text, &names, false)
    }

    #[test]
    fn literals_casts_and_windows_macros() {
        assert_eq!(eval("0x0010").unwrap(), 16);
        assert_eq!(eval("0x80200001L").unwrap(), 0x8020_0001);
        assert_eq!(eval("((HRESULT)0x80200001)").unwrap(), -2_145_386_495);
        assert_eq!(eval("__MSABI_LONG(0x80200001)").unwrap(), -2_145_386_495);
        assert_eq!(eval("(UINT64)(-1)").unwrap(), i128::from(u64::MAX));
        assert_eq!(eval("UINT64_MAX").unwrap(), i128::from(u64::MAX));
        assert_eq!(eval("017").unwrap(), 15);
    }

    #[test]
    fn operators_follow_c_precedence() {
        assert_eq!(eval("(A | B) | 16").unwrap(), 21);
        assert_eq!(eval("1 + 2 * 3").unwrap(), 7);
        assert_eq!(eval("1 << 4 | 1").unwrap(), 17);
        assert_eq!(eval("A == 1 && B == 4").unwrap(), 1);
        assert_eq!(eval("A ? 5 : 6").unwrap(), 5);
        assert_eq!(eval("~0 & 0xFF").unwrap(), 255);
    }

    #[test]
    fn names_must_be_known_outside_if_lines() {
        assert!(eval("C + 1").is_err());
        let names = Names(HashMap::from([("A", 1)]));
        assert_eq!(evaluate("C + 1", &names, true).unwrap(), 1);
        assert_eq!(
            evaluate("defined(A) && !defined C", &names, true).unwrap(),
            1
        );
    }

    #[test]
    fn rejects_what_is_not_a_constant() {
        assert!(eval("\"text\"").is_err());
        assert!(eval("1 +").is_err());
        assert!(eval("(1").is_err());
        assert!(eval("1 / 0").is_err());
    }
}
