//! `hosted/calculator`: arithmetic on real numbers, evaluated here (never by a language
//! runtime): `+ - * / % ^`, parentheses, unary signs, `pi`, `e`, and `sqrt abs floor ceil
//! round ln log10 sin cos tan` of one argument, `min max` of two.

/// Characters an expression may have.
pub const EXPRESSION_MAX: usize = 1_000;
/// Nesting (parentheses, signs, powers) an expression may have.
const DEPTH_MAX: usize = 64;

/// The value of `expression`, or why there is none.
pub fn evaluate(expression: &str) -> Result<f64, String> {
    if expression.chars().count() > EXPRESSION_MAX {
        return Err(format!("the expression is longer than {EXPRESSION_MAX} characters"));
    }
    let mut parser = Parser { tokens: tokenize(expression)?, at: 0, depth: 0 };
    let value = parser.sum()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {} at the end", parser.tokens[parser.at]));
    }
    if !value.is_finite() {
        return Err("the result is not a finite number".into());
    }
    Ok(value)
}

/// A result as text: integers without a fraction, others with up to 12 decimal places (f64
/// arithmetic: `0.1 + 0.2` answers `0.3`, `1e-13` answers `0`).
pub fn format(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let text = format!("{value:.12}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" { "0".into() } else { text.to_owned() }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(char),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(name) => write!(f, "'{name}'"),
            Self::Op(op) => write!(f, "'{op}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent: `1e3`, `2.5E-4`.
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let mut j = i + 1;
                if j < chars.len() && matches!(chars[j], '+' | '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            tokens.push(Token::Number(literal.parse().map_err(|_| format!("'{literal}' is not a number"))?));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect::<String>().to_ascii_lowercase()));
        } else if "+-*/%^(),".contains(c) {
            tokens.push(Token::Op(c));
            i += 1;
        } else {
            return Err(format!("'{c}' is not part of arithmetic"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > DEPTH_MAX { Err(format!("the expression nests deeper than {DEPTH_MAX}")) } else { Ok(()) }
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut value = self.product()?;
        loop {
            if self.eat('+') {
                value += self.product()?;
            } else if self.eat('-') {
                value -= self.product()?;
            } else {
                return Ok(value);
            }
        }
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut value = self.unary()?;
        loop {
            if self.eat('*') {
                value *= self.unary()?;
            } else if self.eat('/') {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err("division by zero".into());
                }
                value /= divisor;
            } else if self.eat('%') {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err("division by zero".into());
                }
                value %= divisor;
            } else {
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        self.deeper()?;
        let value = if self.eat('-') {
            -self.unary()?
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(value)
    }

    /// `^` binds tighter than a sign on its left and groups to the right: `-2^2` is -4,
    /// `2^3^2` is 512.
    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.eat('^') {
            let exponent = self.unary()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Number(value)) => {
                self.at += 1;
                Ok(value)
            }
            Some(Token::Op('(')) => {
                self.at += 1;
                self.deeper()?;
                let value = self.sum()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err("a '(' is not closed".into());
                }
                Ok(value)
            }
            Some(Token::Name(name)) => {
                self.at += 1;
                match name.as_str() {
                    "pi" => Ok(std::f64::consts::PI),
                    "e" => Ok(std::f64::consts::E),
                    _ => self.call(&name),
                }
            }
            Some(token) => Err(format!("unexpected {token}")),
            None => Err("the expression ends too early".into()),
        }
    }

    fn call(&mut self, name: &str) -> Result<f64, String> {
        if !self.eat('(') {
            return Err(format!("'{name}' is not a known constant"));
        }
        self.deeper()?;
        let mut arguments = vec![self.sum()?];
        while self.eat(',') {
            arguments.push(self.sum()?);
        }
        self.depth -= 1;
        if !self.eat(')') {
            return Err(format!("{name}( is not closed"));
        }
        let one = |f: fn(f64) -> f64| match arguments.as_slice() {
            [x] => Ok(f(*x)),
            _ => Err(format!("{name} takes one argument")),
        };
        let two = |f: fn(f64, f64) -> f64| match arguments.as_slice() {
            [x, y] => Ok(f(*x, *y)),
            _ => Err(format!("{name} takes two arguments")),
        };
        match name {
            "sqrt" => one(f64::sqrt),
            "abs" => one(f64::abs),
            "floor" => one(f64::floor),
            "ceil" => one(f64::ceil),
            "round" => one(f64::round),
            "ln" => one(f64::ln),
            "log10" => one(f64::log10),
            "sin" => one(f64::sin),
            "cos" => one(f64::cos),
            "tan" => one(f64::tan),
            "min" => two(f64::min),
            "max" => two(f64::max),
            _ => Err(format!("'{name}' is not a known function")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> String {
        evaluate(text).map(format).unwrap_or_else(|why| format!("error: {why}"))
    }

    #[test]
    fn arithmetic_follows_the_usual_rules() {
        for (expression, expected) in [
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("2^3^2", "512"),
            ("-2^2", "-4"),
            ("10 / 4", "2.5"),
            ("7 % 3", "1"),
            ("1e3 + 2.5E-1", "1000.25"),
            ("sqrt(16) + abs(-2) + max(1, 4)", "10"),
            ("round(pi * 100) / 100", "3.14"),
            ("0.1 + 0.2", "0.3"),
            ("--3", "3"),
        ] {
            assert_eq!(eval(expression), expected, "{expression}");
        }
    }

    #[test]
    fn bad_input_is_an_answer_not_a_panic() {
        for bad in ["1 / 0", "1 +", "(1", "2 ** 3", "import os", "sqrt(1, 2)", "x", "10^400", "", "1 2", "ln(-1)"] {
            assert!(eval(bad).starts_with("error: "), "{bad}: {}", eval(bad));
        }
        assert!(eval(&format!("{}1{}", "(".repeat(100), ")".repeat(100))).contains("nests deeper"));
        assert!(eval(&"-".repeat(200)).contains("nests deeper"));
        assert!(eval(&"1+".repeat(600)).contains("longer than"));
    }
}
