//! Compiled templates (`text {{ pipeline }} text`) and pipelines (`placeholder | fn:… | fn:…`),
//! and their evaluation.

use super::allowed::{Allowed, Prefix};
use super::error;
use super::functions::{self, Function, Val};
use super::placeholder::{Placeholder, Resolver, Values};
use std::borrow::Cow;
use twinwire_protocol::DittoError;

/// At most this many functions in one pipeline (`placeholder:function.too.complex` beyond).
pub const MAX_FUNCTIONS: usize = 10;

/// The result of resolving a template or pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The rendered string(s): one, or several when a placeholder is multi-valued (every
    /// combination, in order). Never empty. Callers that need one value (target addresses,
    /// header values) take the first.
    Values(Vec<String>),
    /// A placeholder had no value (or a function such as `fn:substring-before` found nothing),
    /// and no `fn:default` stepped in: skip the header, drop the message.
    Unresolved,
    /// `fn:filter` removed a value, or `fn:delete()` deleted the value of every expression of a
    /// template without literal text: a deleted header is not set.
    Deleted,
}

impl Resolved {
    /// The first value, if resolved.
    pub fn first(&self) -> Option<&str> {
        match self {
            Resolved::Values(v) => v.first().map(String::as_str),
            _ => None,
        }
    }

    /// The first value, if resolved.
    pub fn into_first(self) -> Option<String> {
        match self {
            Resolved::Values(v) => v.into_iter().next(),
            _ => None,
        }
    }

    /// All values; empty if unresolved or deleted.
    pub fn into_values(self) -> Vec<String> {
        match self {
            Resolved::Values(v) => v,
            _ => Vec::new(),
        }
    }

    pub fn is_resolved(&self) -> bool {
        matches!(self, Resolved::Values(_))
    }
}

/// One pipeline, the text between `{{` and `}}`: an optional placeholder, then up to
/// [`MAX_FUNCTIONS`] functions separated by `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    source: String,
    input: Option<Placeholder>,
    functions: Vec<Function>,
}

impl Pipeline {
    /// Compiles a pipeline written without braces, e.g. `thing:name | fn:upper()`.
    pub fn compile(expression: &str, allowed: &Allowed) -> Result<Pipeline, DittoError> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(error::not_resolvable(
                expression,
                "The expression is empty: write a placeholder such as thing:id or a function \
                 such as fn:default('x').",
            ));
        }
        let stages = split_stages(expression).map_err(|why| {
            error::not_resolvable(
                expression,
                format!("{why}. Quote function arguments with ' or \"."),
            )
        })?;
        let first_is_function = stages.first().is_some_and(|s| s.starts_with("fn:"));
        let function_count = stages.len() - usize::from(!first_is_function);
        if function_count > MAX_FUNCTIONS {
            return Err(error::too_complex(MAX_FUNCTIONS));
        }
        if let Some(empty) = stages.iter().position(|s| s.is_empty()) {
            return Err(error::not_resolvable(
                expression,
                format!(
                    "Stage {} of the pipeline is empty. Separate a placeholder and functions \
                     with single '|', e.g. thing:name | fn:upper().",
                    empty + 1
                ),
            ));
        }
        let mut stages = stages.into_iter();
        let input = if first_is_function {
            None
        } else {
            stages
                .next()
                .map(|s| Placeholder::parse(s, allowed))
                .transpose()?
        };
        let mut parsed = Vec::with_capacity(function_count);
        for stage in stages {
            if !stage.starts_with("fn:") {
                return Err(error::function_unknown(
                    stage,
                    "Only functions (fn:name(…)) may follow the first stage of a pipeline; a \
                     placeholder may only come first.",
                ));
            }
            parsed.push(functions::parse(stage, allowed)?);
        }
        if parsed.iter().any(Function::is_split)
            && input.as_ref().map(Placeholder::prefix) != Some(Prefix::Jwt)
        {
            return Err(error::signature_invalid(
                expression,
                "fn:split('separator') on a jwt: placeholder",
                "fn:split may only be used in a pipeline that starts with a jwt: placeholder",
            ));
        }
        Ok(Pipeline {
            source: expression.to_owned(),
            input,
            functions: parsed,
        })
    }

    /// Compiles a pipeline of functions only, as `incomingConditions`, `outgoingConditions` and
    /// `acknowledgementRequests.filter` are written (`fn:filter(header:qos,'ne','0')`); resolve
    /// it with [`Pipeline::resolve_with_input`].
    pub fn compile_functions(expression: &str, allowed: &Allowed) -> Result<Pipeline, DittoError> {
        let pipeline = Pipeline::compile(expression, allowed)?;
        match &pipeline.input {
            None => Ok(pipeline),
            Some(p) => Err(error::function_unknown(
                &p.to_string(),
                "Only functions (fn:name(…)) are allowed here, e.g. \
                 fn:filter(header:x,'eq','true') or fn:delete().",
            )),
        }
    }

    /// The expression as written (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholder the pipeline starts with, if it does not start with a function.
    pub fn input(&self) -> Option<&Placeholder> {
        self.input.as_ref()
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Every placeholder of the pipeline: the input and those among function arguments.
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.input
            .iter()
            .chain(self.functions.iter().flat_map(Function::placeholders))
    }

    /// Evaluates the pipeline.
    pub fn resolve(&self, resolver: &dyn Resolver) -> Resolved {
        finish(self.evaluate(resolver, None))
    }

    /// Evaluates the pipeline with `input` instead of *empty* as the value the first function
    /// gets (Ditto prepends `fn:default('true')` to conditions and `fn:default('<requested
    /// acks>')` to acknowledgement filters). A pipeline that starts with a placeholder ignores
    /// `input`.
    pub fn resolve_with_input(&self, resolver: &dyn Resolver, input: &str) -> Resolved {
        finish(self.evaluate(resolver, Some(input)))
    }

    pub(crate) fn evaluate<'r>(
        &'r self,
        resolver: &'r dyn Resolver,
        start: Option<&'r str>,
    ) -> Val<'r> {
        let mut value = match (&self.input, start) {
            (Some(p), _) => Val::from_values(p.resolve(resolver)),
            (None, Some(s)) => Val::Values(Values::One(Cow::Borrowed(s))),
            (None, None) => Val::Empty,
        };
        for f in &self.functions {
            if value == Val::Deleted {
                break;
            }
            value = f.apply(value, resolver);
        }
        value
    }
}

fn finish(value: Val<'_>) -> Resolved {
    match value {
        Val::Values(v) => Resolved::Values(v.into_vec().into_iter().map(Cow::into_owned).collect()),
        Val::Empty => Resolved::Unresolved,
        Val::Removed | Val::Deleted => Resolved::Deleted,
    }
}

/// Splits at `|` outside quotes; stages are trimmed.
fn split_stages(expression: &str) -> Result<Vec<&str>, String> {
    let mut stages = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in expression.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = expression[i + 1..].starts_with(q);
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '|' => {
                    stages.push(expression[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    if let Some(q) = quote {
        return Err(format!("The quote {q} is not closed"));
    }
    stages.push(expression[start..].trim());
    Ok(stages)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Expression(Pipeline),
}

/// A compiled template: literal text with any number of `{{ … }}` pipelines.
///
/// Compile once (at connection start), then [`Template::resolve`] per message without parsing
/// again; resolving allocates the output strings (and whatever functions such as `fn:upper`
/// produce), nothing else for placeholders that borrow from the resolver. Rough figure: about
/// 150 ns for a target address with three expressions, one `fn:upper` and one `fn:default`, in
/// release mode (the ignored test `rough_resolution_cost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    literal_len: usize,
}

impl Template {
    /// Compiles `text`, checking every placeholder against `allowed`.
    ///
    /// Errors (all 400): `placeholder:placeholder.notresolvable` for a `{{` without `}}`, `{{`
    /// inside an expression or an empty expression; `placeholder:unresolved` for an unknown
    /// placeholder or one the location does not allow; `placeholder:function.unknown`,
    /// `placeholder:function.signature.invalid`, `placeholder:function.too.complex`. A `}}`
    /// without `{{` is literal text, as in Ditto.
    pub fn compile(text: &str, allowed: &Allowed) -> Result<Template, DittoError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal_len = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                literal_len += open;
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let body = &rest[open + 2..];
            let close = find_close(body).map_err(|why| error::not_resolvable(text, why))?;
            let expression = &body[..close];
            if expression.trim().is_empty() {
                return Err(error::not_resolvable(
                    text,
                    "'{{ }}' is empty: write a placeholder such as {{ thing:id }}.",
                ));
            }
            parts.push(Part::Expression(Pipeline::compile(expression, allowed)?));
            rest = &body[close + 2..];
        }
        if !rest.is_empty() {
            literal_len += rest.len();
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
            literal_len,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True if the template has no `{{ … }}` expression.
    pub fn is_constant(&self) -> bool {
        self.pipelines().next().is_none()
    }

    /// The pipelines, in order.
    pub fn pipelines(&self) -> impl Iterator<Item = &Pipeline> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expression(e) => Some(e),
            Part::Literal(_) => None,
        })
    }

    /// Every placeholder of the template, including those in function arguments.
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.pipelines().flat_map(Pipeline::placeholders)
    }

    /// Renders the template. Any unresolved expression makes the whole template
    /// [`Resolved::Unresolved`]. Otherwise a value removed by `fn:filter` makes it
    /// [`Resolved::Deleted`] (the condition failed: do not set it). Expressions deleted by
    /// `fn:delete` render as nothing, and if every part is one the result is
    /// [`Resolved::Deleted`] (as in Ditto). Multi-valued placeholders give every combination.
    pub fn resolve(&self, resolver: &dyn Resolver) -> Resolved {
        self.render(resolver).unwrap_or(Resolved::Unresolved)
    }

    /// Like [`Template::resolve`], but an unresolved expression is a `placeholder:unresolved`
    /// error naming it (authorization subjects: the message fails), and deleted gives no value.
    pub fn resolve_strict(&self, resolver: &dyn Resolver) -> Result<Vec<String>, DittoError> {
        match self.render(resolver) {
            Ok(resolved) => Ok(resolved.into_values()),
            Err(pipeline) => Err(error::unresolved(
                pipeline.source(),
                "Some placeholders could not be resolved. Check the spelling of the placeholder \
                 and make sure all required headers are set.",
            )),
        }
    }

    fn render<'t>(&'t self, resolver: &dyn Resolver) -> Result<Resolved, &'t Pipeline> {
        let mut results = vec![String::with_capacity(
            self.literal_len + 24 * self.parts.len(),
        )];
        let mut all_deleted = !self.parts.is_empty();
        let mut removed = false;
        for part in &self.parts {
            match part {
                Part::Literal(s) => {
                    all_deleted = false;
                    results.iter_mut().for_each(|r| r.push_str(s));
                }
                Part::Expression(p) => match p.evaluate(resolver, None) {
                    Val::Empty => return Err(p),
                    Val::Removed => removed = true,
                    Val::Deleted => {}
                    Val::Values(Values::One(v)) => {
                        all_deleted = false;
                        results.iter_mut().for_each(|r| r.push_str(&v));
                    }
                    Val::Values(values) => {
                        all_deleted = false;
                        let mut next = Vec::with_capacity(results.len() * values.len());
                        for r in &results {
                            for v in values.iter() {
                                let mut s = String::with_capacity(r.len() + v.len());
                                s.push_str(r);
                                s.push_str(v);
                                next.push(s);
                            }
                        }
                        results = next;
                    }
                },
            }
        }
        Ok(if all_deleted || removed {
            Resolved::Deleted
        } else {
            Resolved::Values(results)
        })
    }
}

/// The index of the `}}` that closes an expression; quotes may contain braces.
fn find_close(body: &str) -> Result<usize, String> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = body[i + 1..].starts_with(q);
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if body[i..].starts_with("}}") {
                    return Ok(i);
                }
                if body[i..].starts_with("{{") {
                    return Err("Placeholders must not be nested: a '{{' appears inside \
                                '{{ … }}'. Make sure braces are in the expected order."
                        .to_owned());
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    Err(match quote {
        Some(q) => format!("The quote {q} in '{{{{ … }}}}' is not closed."),
        None => {
            "A '{{' is not closed with '}}'. Make sure braces are in the expected order.".to_owned()
        }
    })
}
