//! `modelMapping`: exact key first, then the longest `prefix*` key, then `*`.
//! An empty target keeps the requested name.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMapping {
    exact: Vec<(String, String)>,
    /// `(prefix, target)`, longest prefix first so the first match wins.
    prefixes: Vec<(String, String)>,
    fallback: Option<String>,
}

impl ModelMapping {
    pub fn new(entries: Vec<(String, String)>) -> Self {
        let mut m = Self::default();
        for (key, target) in entries {
            if key == "*" {
                m.fallback = Some(target);
            } else if let Some(prefix) = key.strip_suffix('*') {
                m.prefixes.push((prefix.to_string(), target));
            } else {
                m.exact.push((key, target));
            }
        }
        m.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        m
    }

    /// The model to send upstream for the model the client asked for.
    pub fn map<'a>(&'a self, requested: &'a str) -> &'a str {
        let target = self
            .exact
            .iter()
            .find(|(k, _)| k == requested)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| requested.starts_with(p.as_str()))
            })
            .map(|(_, t)| t.as_str())
            .or(self.fallback.as_deref());
        match target {
            Some(t) if !t.is_empty() => t,
            _ => requested,
        }
    }

    /// Every non-empty mapping target (for load-time checks).
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.exact
            .iter()
            .chain(self.prefixes.iter())
            .map(|(_, t)| t.as_str())
            .chain(self.fallback.as_deref())
            .filter(|t| !t.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.fallback.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> ModelMapping {
        ModelMapping::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    /// Maps every `(requested, want)` of `cases` through `pairs`.
    fn assert_maps(pairs: &[(&str, &str)], cases: &[(&str, &str)]) {
        let m = mapping(pairs);
        for (requested, want) in cases {
            assert_eq!(m.map(requested), *want, "{requested}");
        }
    }

    #[test]
    fn exact_beats_prefix_beats_fallback() {
        assert_maps(
            &[
                ("*", "fallback"),
                ("gpt-4*", "short-prefix"),
                ("gpt-4-turbo*", "long-prefix"),
                ("gpt-4-turbo", "exact"),
            ],
            &[
                ("gpt-4-turbo", "exact"),
                ("gpt-4-turbo-2024", "long-prefix"),
                ("gpt-4o", "short-prefix"),
                ("claude", "fallback"),
            ],
        );
    }

    #[test]
    fn longest_prefix_wins_regardless_of_order() {
        assert_maps(
            &[("a*", "one"), ("abc*", "three"), ("ab*", "two")],
            &[("abcd", "three"), ("abx", "two"), ("ax", "one")],
        );
    }

    #[test]
    fn empty_target_keeps_requested_name() {
        assert_maps(
            &[("gpt-3", ""), ("*", "other")],
            &[("gpt-3", "gpt-3"), ("x", "other")],
        );
        assert_maps(&[("*", "")], &[("kept", "kept")]);
    }

    #[test]
    fn no_mapping_keeps_name() {
        let m = mapping(&[]);
        assert!(m.is_empty());
        assert_eq!(m.map("gpt-4o"), "gpt-4o");
    }

    #[test]
    fn seed_qwen_example() {
        // The seed's Qwen example mapping.
        assert_maps(
            &[
                ("gpt-3", "qwen-turbo"),
                ("gpt-35-turbo", "qwen-plus"),
                ("gpt-4-turbo", "qwen-max"),
                ("gpt-4-*", "qwen-max"),
                ("gpt-4o", "qwen-vl-plus"),
                ("text-embedding-v1", "text-embedding-v1"),
                ("*", "qwen-turbo"),
            ],
            &[
                ("gpt-4o", "qwen-vl-plus"),
                ("gpt-4-0613", "qwen-max"),
                ("gpt-3", "qwen-turbo"),
                ("llama", "qwen-turbo"),
            ],
        );
    }
}
