//! The operators of `fn:filter` (checklist §3.4): `eq`, `ne`, `exists`, `like`.

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Exists,
    Like,
}

impl Op {
    pub(crate) fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "exists" => Op::Exists,
            "like" => Op::Like,
            _ => return None,
        })
    }

    /// The operator with a compared value. For `exists` the compared value says whether the
    /// value should exist (`true`, case-insensitive) or not (anything else); a value exists when
    /// it is not empty.
    pub(crate) fn test(self, value: &str, compared: &str) -> bool {
        match self {
            Op::Eq => value == compared,
            Op::Ne => value != compared,
            Op::Exists => compared.eq_ignore_ascii_case("true") != value.is_empty(),
            Op::Like => like(value, compared),
        }
    }

    /// The operator without a compared value: only `exists` has this form.
    pub(crate) fn test_alone(self, value: &str) -> bool {
        self == Op::Exists && !value.is_empty()
    }
}

/// Glob matching of the whole value: `*` is any run of characters (also none, so that
/// `*moderator` matches `moderator` as the documentation's JWT example requires), `?` is one
/// character, `|` separates alternatives.
pub(crate) fn like(value: &str, pattern: &str) -> bool {
    pattern.split('|').any(|alt| glob(value, alt))
}

fn glob(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut vi, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some('?') => {
                vi += 1;
                pi += 1;
            }
            Some(c) if *c == v[vi] => {
                vi += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
