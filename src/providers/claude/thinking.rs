//! OpenAI's `reasoning_effort` → Claude's thinking control, shared by claude and bedrock.
//!
//! Facts (Anthropic's "Extended thinking" / "Adaptive thinking" docs, the Bedrock user guide
//! page "Adaptive thinking", and the `anthropic` SDK's `ThinkingConfigAdaptiveParam` and
//! `OutputConfigParam` types):
//! - Claude 4.6 (Opus, Sonnet) and later take `thinking: {type: "adaptive", display?}` with the
//!   depth set by `output_config.effort` (`low`, `medium`, `high`, `xhigh`, `max`); the fixed
//!   budget form is deprecated there.
//! - Opus 4.7, the Claude 5 families (Mythos, Fable) and Mythos Preview take adaptive thinking
//!   only: `{type: "enabled", budget_tokens}` and `{type: "disabled"}` are a 400. Without a
//!   `thinking` field they do not think. Their default display omits the thinking text, so we
//!   ask for `summarized`: a client that set `reasoning_effort` wants `reasoning_content`.
//! - Older models take `{type: "enabled", budget_tokens}` (at least 1024, below `max_tokens`).

use crate::error::ProxyError;
use serde_json::{json, Value};

/// What a request gets for its `reasoning_effort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thinking {
    /// Leave `thinking` out (adaptive-only models think only when asked).
    Omit,
    /// `thinking: {type: "disabled"}`.
    Disabled,
    /// `thinking: {type: "enabled", budget_tokens}`; `max_tokens` must exceed the budget.
    Budget(u64),
    /// `thinking: {type: "adaptive", display: "summarized"}` and `output_config.effort`.
    Adaptive(&'static str),
}

impl Thinking {
    /// The value of Claude's `thinking` field, if any.
    pub fn field(&self) -> Option<Value> {
        match self {
            Self::Omit => None,
            Self::Disabled => Some(json!({"type": "disabled"})),
            Self::Budget(b) => Some(json!({"type": "enabled", "budget_tokens": b})),
            Self::Adaptive(_) => Some(json!({"type": "adaptive", "display": "summarized"})),
        }
    }
}

/// How a model takes thinking, read from its id: `claude-opus-4-7`, `claude-sonnet-4-6-2026…`,
/// Bedrock's `us.anthropic.claude-opus-4-7-v1:0`, Vertex's `claude-opus-4-6@…`, the older
/// `claude-3-7-sonnet-…`. An id we cannot read (a custom alias) keeps the budget form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingStyle {
    Budget,
    /// Adaptive preferred, budget and disabled still accepted.
    Adaptive,
    AdaptiveOnly,
}

pub fn style(model: &str) -> ThinkingStyle {
    let Some(i) = model.find("claude-") else {
        return ThinkingStyle::Budget;
    };
    let mut family = None;
    let mut version: Vec<u32> = Vec::with_capacity(2);
    for part in model[i + "claude-".len()..].split(['-', '@', ':', '.', '/']) {
        match part.parse::<u32>() {
            // A date or build suffix ends the version.
            Ok(n) if part.len() <= 2 && version.len() < 2 => version.push(n),
            Ok(_) => break,
            Err(_) if family.is_none() && version.is_empty() => family = Some(part),
            // `claude-3-7-sonnet`: the family follows the version.
            Err(_) if family.is_none() => {
                family = Some(part);
                break;
            }
            Err(_) => break,
        }
    }
    let major = version.first().copied().unwrap_or(0);
    let minor = version.get(1).copied().unwrap_or(0);
    match family {
        Some("mythos" | "fable") => ThinkingStyle::AdaptiveOnly,
        _ if major >= 5 || (major == 4 && minor >= 7) => ThinkingStyle::AdaptiveOnly,
        Some("opus" | "sonnet") if major == 4 && minor == 6 => ThinkingStyle::Adaptive,
        _ => ThinkingStyle::Budget,
    }
}

/// Budgets for the fixed form (Claude's minimum is 1024 tokens).
fn budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" | "xhigh" => Some(16384),
        _ => None,
    }
}

/// The thinking control for `reasoning_effort` on `model`; an unknown effort is a 400.
pub fn for_effort(model: &str, effort: &Value) -> Result<Thinking, ProxyError> {
    let bad = |m: String| ProxyError::bad_request(m).with_param("reasoning_effort");
    let effort = effort
        .as_str()
        .ok_or_else(|| bad("'reasoning_effort' must be a string".into()))?;
    for_effort_str(model, effort)
}

/// [`for_effort`] for an effort already read as a string (the request fast path's).
pub fn for_effort_str(model: &str, effort: &str) -> Result<Thinking, ProxyError> {
    let bad = |m: String| ProxyError::bad_request(m).with_param("reasoning_effort");
    let style = style(model);
    if effort == "none" {
        return Ok(match style {
            ThinkingStyle::AdaptiveOnly => Thinking::Omit,
            _ => Thinking::Disabled,
        });
    }
    if budget(effort).is_none() {
        return Err(bad(format!(
            "unknown reasoning_effort '{effort}' (none, minimal, low, medium, high or xhigh)"
        )));
    }
    Ok(match (style, effort) {
        (ThinkingStyle::Budget, e) => Thinking::Budget(budget(e).unwrap_or(1024)),
        (_, "minimal" | "low") => Thinking::Adaptive("low"),
        (_, "medium") => Thinking::Adaptive("medium"),
        (_, "high") => Thinking::Adaptive("high"),
        (_, _) => Thinking::Adaptive("xhigh"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_read_for_their_thinking_style() {
        use ThinkingStyle::*;
        for (model, want) in [
            ("claude-opus-4-7", AdaptiveOnly),
            ("claude-opus-4-7-20260416", AdaptiveOnly),
            ("us.anthropic.claude-opus-4-7-v1:0", AdaptiveOnly),
            ("claude-fable-5", AdaptiveOnly),
            ("claude-mythos-preview", AdaptiveOnly),
            ("claude-sonnet-5", AdaptiveOnly),
            ("claude-opus-4-6", Adaptive),
            ("claude-sonnet-4-6@20260217", Adaptive),
            ("anthropic.claude-sonnet-4-6", Adaptive),
            ("claude-sonnet-4-5-20250929", Budget),
            ("claude-haiku-4-5", Budget),
            ("claude-opus-4-20250514", Budget),
            ("claude-3-7-sonnet-20250219", Budget),
            ("anthropic.claude-3-5-sonnet-20240620-v1:0", Budget),
            ("my-alias", Budget),
        ] {
            assert_eq!(style(model), want, "{model}");
        }
    }

    #[test]
    fn effort_maps_per_style() {
        let e = |m: &str, v: &str| for_effort(m, &json!(v)).unwrap();
        assert_eq!(e("claude-opus-4-7", "minimal"), Thinking::Adaptive("low"));
        assert_eq!(e("claude-opus-4-7", "medium"), Thinking::Adaptive("medium"));
        assert_eq!(e("claude-opus-4-7", "xhigh"), Thinking::Adaptive("xhigh"));
        assert_eq!(e("claude-opus-4-7", "none"), Thinking::Omit);
        assert_eq!(e("claude-sonnet-4-6", "none"), Thinking::Disabled);
        assert_eq!(e("claude-sonnet-4-6", "high"), Thinking::Adaptive("high"));
        assert_eq!(e("claude-sonnet-4-5", "medium"), Thinking::Budget(4096));
        assert_eq!(e("claude-sonnet-4-5", "none"), Thinking::Disabled);
        assert_eq!(
            Thinking::Adaptive("high").field(),
            Some(json!({"type": "adaptive", "display": "summarized"}))
        );
        assert_eq!(Thinking::Omit.field(), None);
        let err = for_effort("claude-opus-4-7", &json!("max")).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("reasoning_effort"))
        );
        assert!(for_effort("claude-opus-4-7", &json!(3)).is_err());
    }
}
