//! Token usage, read from OpenAI-shaped bodies and from each provider's own fields.
//!
//! Every count comes from an upstream and may be anything up to `u64::MAX`: all arithmetic on
//! them saturates (a wrapped total would be a wrong bill; an overflow panic would poison the
//! exchange in a checked build).

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// Builds a usage where the total defaults to prompt + completion (saturating).
    pub fn new(prompt: u64, completion: u64, total: Option<u64>) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
        }
    }

    /// Like [`Usage::new`], with prompt and completion each the saturating sum of several
    /// upstream counts (e.g. Claude's input + cache-creation + cache-read tokens, Gemini's
    /// candidates + thoughts tokens). Translators call this instead of adding counts themselves.
    pub fn saturating(prompt: &[u64], completion: &[u64], total: Option<u64>) -> Self {
        Self::new(sum(prompt), sum(completion), total)
    }

    /// Field-wise saturating sum (usage reported in several parts).
    pub fn saturating_add(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
        }
    }

    /// Reads OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`, `total_tokens`);
    /// missing counts are 0 and a missing total is their sum.
    pub fn from_openai(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let get = |k: &str| obj.get(k).and_then(Value::as_u64);
        let (p, c, t) = (
            get("prompt_tokens"),
            get("completion_tokens"),
            get("total_tokens"),
        );
        if p.is_none() && c.is_none() && t.is_none() {
            return None;
        }
        Some(Self::new(p.unwrap_or(0), c.unwrap_or(0), t))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        })
    }
}

/// Saturating sum of upstream counts.
pub fn sum(counts: &[u64]) -> u64 {
    counts.iter().fold(0u64, |a, &b| a.saturating_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_usage_with_and_without_total() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": 4})).unwrap();
        assert_eq!(
            u,
            Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7
            }
        );
        let u = Usage::from_openai(&json!({"total_tokens": 106})).unwrap();
        assert_eq!(u.total_tokens, 106);
        assert!(Usage::from_openai(&json!({})).is_none());
        assert!(Usage::from_openai(&json!(null)).is_none());
    }

    #[test]
    fn counts_at_the_top_of_the_range_saturate() {
        let max = u64::MAX;
        assert_eq!(Usage::new(max, 1, None).total_tokens, max);
        assert_eq!(Usage::new(max, max, None).total_tokens, max);
        let u = Usage::from_openai(&json!({"prompt_tokens": max, "completion_tokens": max}));
        assert_eq!(u.unwrap().total_tokens, max);
        let u = Usage::saturating(&[max, 5, 7], &[max - 1, 2], None);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (max, max, max)
        );
        assert_eq!(
            Usage::saturating(&[1, 2, 3], &[4], None),
            Usage::new(6, 4, Some(10))
        );
        let sum2 = u.saturating_add(Usage::new(1, 1, None));
        assert_eq!(sum2, u);
        assert_eq!(
            Usage::new(1, 2, None).saturating_add(Usage::new(3, 4, None)),
            Usage::new(4, 6, Some(10))
        );
    }
}
