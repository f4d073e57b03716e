//! `warn_if` / `error_if` (test config): a comparison applied to a test's failing-row count, written
//! as dbt writes it (`!= 0`, `>10`, `>= 5`, `=0`, `<3`).

use std::fmt;

/// A parsed `warn_if` / `error_if` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    op: Op,
    value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Threshold {
    /// Parses `<op> <n>` with op one of `=`, `==`, `!=`, `<>`, `>`, `>=`, `<`, `<=`.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let ops = [
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest)))
            .ok_or_else(|| format!("`{t}` is not a condition like `!= 0` or `> 10`"))?;
        let value = rest.trim().parse::<u64>().map_err(|_| format!("`{t}` must compare with a whole number"))?;
        Ok(Threshold { op, value })
    }

    /// True if the failing-row count meets the condition.
    pub fn holds(&self, failures: u64) -> bool {
        let v = self.value;
        match self.op {
            Op::Eq => failures == v,
            Op::Ne => failures != v,
            Op::Gt => failures > v,
            Op::Ge => failures >= v,
            Op::Lt => failures < v,
            Op::Le => failures <= v,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        };
        write!(f, "{op} {}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dbt_spellings() {
        assert!(Threshold::parse("!=0").unwrap().holds(1));
        assert!(!Threshold::parse("!= 0").unwrap().holds(0));
        assert!(Threshold::parse(">10").unwrap().holds(11));
        assert!(!Threshold::parse("> 10").unwrap().holds(10));
        assert!(Threshold::parse(">=5").unwrap().holds(5));
        assert!(Threshold::parse("=0").unwrap().holds(0));
        assert!(Threshold::parse("<3").unwrap().holds(2));
        assert!(Threshold::parse("<= 3").unwrap().holds(3));
        assert_eq!(Threshold::parse("<>0").unwrap().to_string(), "!= 0");
        assert!(Threshold::parse("10").is_err());
        assert!(Threshold::parse("> ten").is_err());
    }
}
