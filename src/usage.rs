//! Token usage, read from OpenAI-shaped bodies and from each provider's own fields.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// Builds a usage where the total defaults to prompt + completion.
    pub fn new(prompt: u64, completion: u64, total: Option<u64>) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt + completion),
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
}
