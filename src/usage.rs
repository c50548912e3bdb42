//! Token usage, read from OpenAI-shaped bodies and from each provider's own fields.
//!
//! Every count comes from an upstream and may be anything up to `u64::MAX`: all arithmetic on
//! them saturates (a wrapped total would be a wrong bill; an overflow panic would poison the
//! exchange in a checked build).

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache (OpenAI's
    /// `prompt_tokens_details.cached_tokens`; Claude's cache reads; Gemini's cached content).
    pub cached_tokens: Option<u64>,
    /// Completion tokens spent on reasoning (OpenAI's
    /// `completion_tokens_details.reasoning_tokens`; Gemini's thoughts).
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Builds a usage where the total defaults to prompt + completion (saturating).
    pub fn new(prompt: u64, completion: u64, total: Option<u64>) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: None,
            reasoning_tokens: None,
        }
    }

    /// With the prompt tokens served from cache.
    pub fn with_cached(mut self, cached: Option<u64>) -> Self {
        self.cached_tokens = cached;
        self
    }

    /// With the completion tokens spent on reasoning.
    pub fn with_reasoning(mut self, reasoning: Option<u64>) -> Self {
        self.reasoning_tokens = reasoning;
        self
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
            cached_tokens: add_opt(self.cached_tokens, other.cached_tokens),
            reasoning_tokens: add_opt(self.reasoning_tokens, other.reasoning_tokens),
        }
    }

    /// From an upstream's counts: `None` when none of prompt, completion and total is
    /// reported; a missing count is 0 and a missing total their sum.
    pub fn reported(
        prompt: Option<u64>,
        completion: Option<u64>,
        total: Option<u64>,
    ) -> Option<Self> {
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return None;
        }
        Some(Self::new(
            prompt.unwrap_or(0),
            completion.unwrap_or(0),
            total,
        ))
    }

    /// Reads OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`, `total_tokens`);
    /// missing counts are 0 and a missing total is their sum.
    pub fn from_openai(v: &Value) -> Option<Self> {
        UsageKeys::OPENAI.read(v.as_object()?)
    }

    /// OpenAI's `usage` object, with the details objects when there is something to put in them.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        });
        if let Some(c) = self.cached_tokens {
            v["prompt_tokens_details"] = json!({ "cached_tokens": c });
        }
        if let Some(r) = self.reasoning_tokens {
            v["completion_tokens_details"] = json!({ "reasoning_tokens": r });
        }
        v
    }

    /// [`Usage::to_json`]'s bytes as `json_write` writes them, without building the `Value` (its
    /// map and keys were an eighth of a short buffered reply's cost).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json_write::write_u64;
        out.extend_from_slice(b"{\"prompt_tokens\":");
        write_u64(out, self.prompt_tokens);
        out.extend_from_slice(b",\"completion_tokens\":");
        write_u64(out, self.completion_tokens);
        out.extend_from_slice(b",\"total_tokens\":");
        write_u64(out, self.total_tokens);
        if let Some(n) = self.cached_tokens {
            out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
            write_u64(out, n);
            out.push(b'}');
        }
        if let Some(n) = self.reasoning_tokens {
            out.extend_from_slice(b",\"completion_tokens_details\":{\"reasoning_tokens\":");
            write_u64(out, n);
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// Where a usage object keeps its counts: OpenAI's names or a provider's own.
#[derive(Debug, Clone, Copy)]
pub struct UsageKeys {
    pub prompt: &'static str,
    pub completion: &'static str,
    pub total: &'static str,
    /// `(object, field)` of the prompt tokens served from cache.
    pub cached: Option<(&'static str, &'static str)>,
    /// `(object, field)` of the completion tokens spent on reasoning.
    pub reasoning: Option<(&'static str, &'static str)>,
}

impl UsageKeys {
    pub const OPENAI: Self = Self {
        prompt: "prompt_tokens",
        completion: "completion_tokens",
        total: "total_tokens",
        cached: Some(("prompt_tokens_details", "cached_tokens")),
        reasoning: Some(("completion_tokens_details", "reasoning_tokens")),
    };

    /// The usage in `obj`, as [`Usage::reported`] with the details found.
    pub fn read(&self, obj: &Map<String, Value>) -> Option<Usage> {
        let get = |k: &str| obj.get(k).and_then(Value::as_u64);
        let detail = |at: Option<(&str, &str)>| {
            let (outer, inner) = at?;
            obj.get(outer)?.get(inner)?.as_u64()
        };
        Some(
            Usage::reported(get(self.prompt), get(self.completion), get(self.total))?
                .with_cached(detail(self.cached))
                .with_reasoning(detail(self.reasoning)),
        )
    }
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
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
    fn details_are_read_and_written_in_openai_shape() {
        let v = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 3}});
        let u = Usage::from_openai(&v).unwrap();
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(4), Some(3)));
        let out = u.to_json();
        assert_eq!(out["prompt_tokens_details"], json!({"cached_tokens": 4}));
        assert_eq!(
            out["completion_tokens_details"],
            json!({"reasoning_tokens": 3})
        );
        let plain = Usage::new(1, 2, None).to_json();
        assert!(plain.get("prompt_tokens_details").is_none());
        assert_eq!(
            Usage::new(1, 1, None)
                .with_cached(Some(u64::MAX))
                .saturating_add(Usage::new(1, 1, None).with_cached(Some(1)))
                .cached_tokens,
            Some(u64::MAX)
        );
    }

    #[test]
    fn openai_usage_with_and_without_total() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": 4})).unwrap();
        assert_eq!(
            u,
            Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7,
                ..Usage::default()
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
