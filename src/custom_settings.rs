//! `customSettings`: the seed's table of parameter names per protocol, as data.
//! Translating providers pick a column; the core applies the settings to the final upstream body.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingMode {
    /// Rename per protocol; skipped where the protocol has no such parameter.
    Auto,
    /// Set the name as given, no rewriting or checks.
    Raw,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomSetting {
    pub name: String,
    pub value: Value,
    pub mode: SettingMode,
    /// false: only fill the field when the request does not have it.
    pub overwrite: bool,
}

/// The columns of the seed's table. Each provider's request says which column it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsProtocol {
    OpenAi,
    Baidu,
    Spark,
    Qwen,
    Gemini,
    Hunyuan,
    Claude,
    Minimax,
}

impl SettingsProtocol {
    const fn column(self) -> usize {
        self as usize
    }

    /// Where in the body the settings go: the seed puts qwen's under `parameters` and gemini's
    /// under `generation_config`; everything else at the root.
    pub const fn subpath(self) -> Option<&'static str> {
        match self {
            SettingsProtocol::Qwen => Some("parameters"),
            SettingsProtocol::Gemini => Some("generation_config"),
            _ => None,
        }
    }
}

/// The seed's table: settingName → name per protocol, `None` where the seed says "none".
/// Columns: openai, baidu, spark, qwen, gemini, hunyuan, claude, minimax.
#[rustfmt::skip]
pub const SETTINGS_TABLE: &[(&str, [Option<&str>; 8])] = &[
    ("max_tokens",  [Some("max_tokens"), Some("max_output_tokens"), Some("max_tokens"), Some("max_tokens"), Some("maxOutputTokens"), None, Some("max_tokens"), Some("tokens_to_generate")]),
    ("temperature", [Some("temperature"), Some("temperature"), Some("temperature"), Some("temperature"), Some("temperature"), Some("Temperature"), Some("temperature"), Some("temperature")]),
    ("top_p",       [Some("top_p"), Some("top_p"), None, Some("top_p"), Some("topP"), Some("TopP"), Some("top_p"), Some("top_p")]),
    ("top_k",       [None, None, Some("top_k"), None, Some("topK"), None, Some("top_k"), None]),
    ("seed",        [Some("seed"), None, None, Some("seed"), None, None, None, None]),
];

/// The field name a setting takes under `protocol`, or `None` when it does not apply.
pub fn resolve_name(setting: &CustomSetting, protocol: SettingsProtocol) -> Option<&str> {
    match setting.mode {
        SettingMode::Raw => Some(setting.name.as_str()),
        SettingMode::Auto => SETTINGS_TABLE
            .iter()
            .find(|(name, _)| *name == setting.name)
            .and_then(|(_, cols)| cols[protocol.column()]),
    }
}

/// Applies every setting to the upstream body (a JSON object).
pub fn apply(settings: &[CustomSetting], protocol: SettingsProtocol, body: &mut Value) {
    if settings.is_empty() {
        return;
    }
    let Some(root) = body.as_object_mut() else {
        return;
    };
    for setting in settings {
        let Some(name) = resolve_name(setting, protocol) else {
            continue;
        };
        let target: &mut Map<String, Value> = match protocol.subpath() {
            None => &mut *root,
            Some(sub) => {
                let slot = root.entry(sub).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                slot.as_object_mut().expect("just made an object")
            }
        };
        if setting.overwrite || !target.contains_key(name) {
            target.insert(name.to_string(), setting.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use SettingsProtocol as P;

    fn auto(name: &str, value: Value) -> CustomSetting {
        CustomSetting {
            name: name.into(),
            value,
            mode: SettingMode::Auto,
            overwrite: true,
        }
    }

    /// Every cell of the seed's table, checked against the seed's text row by row.
    #[test]
    fn every_row_and_column_of_the_seed_table() {
        let expect: &[(&str, [&str; 8])] = &[
            (
                "max_tokens",
                [
                    "max_tokens",
                    "max_output_tokens",
                    "max_tokens",
                    "max_tokens",
                    "maxOutputTokens",
                    "none",
                    "max_tokens",
                    "tokens_to_generate",
                ],
            ),
            (
                "temperature",
                [
                    "temperature",
                    "temperature",
                    "temperature",
                    "temperature",
                    "temperature",
                    "Temperature",
                    "temperature",
                    "temperature",
                ],
            ),
            (
                "top_p",
                [
                    "top_p", "top_p", "none", "top_p", "topP", "TopP", "top_p", "top_p",
                ],
            ),
            (
                "top_k",
                [
                    "none", "none", "top_k", "none", "topK", "none", "top_k", "none",
                ],
            ),
            (
                "seed",
                [
                    "seed", "none", "none", "seed", "none", "none", "none", "none",
                ],
            ),
        ];
        let protocols = [
            P::OpenAi,
            P::Baidu,
            P::Spark,
            P::Qwen,
            P::Gemini,
            P::Hunyuan,
            P::Claude,
            P::Minimax,
        ];
        for (name, cols) in expect {
            for (proto, want) in protocols.iter().zip(cols) {
                let mut body = json!({});
                apply(&[auto(name, json!(7))], *proto, &mut body);
                let target = match proto.subpath() {
                    Some(sub) => body.get(sub).cloned().unwrap_or(json!({})),
                    None => body.clone(),
                };
                if *want == "none" {
                    assert_eq!(target, json!({}), "{name} under {proto:?} must not be set");
                } else {
                    assert_eq!(target, json!({ *want: 7 }), "{name} under {proto:?}");
                }
            }
        }
    }

    #[test]
    fn overwrite_false_only_fills_missing() {
        let mut body = json!({"max_tokens": 10});
        let mut s = auto("max_tokens", json!(99));
        s.overwrite = false;
        let t = auto("temperature", json!(0.5));
        let mut t_keep = t.clone();
        t_keep.overwrite = false;
        apply(&[s, t_keep], P::OpenAi, &mut body);
        assert_eq!(body, json!({"max_tokens": 10, "temperature": 0.5}));
    }

    #[test]
    fn overwrite_true_replaces() {
        let mut body = json!({"temperature": 1.0});
        apply(&[auto("temperature", json!(0.1))], P::OpenAi, &mut body);
        assert_eq!(body, json!({"temperature": 0.1}));
    }

    #[test]
    fn raw_mode_sets_name_verbatim_under_protocol_subpath() {
        let raw = CustomSetting {
            name: "enable_thinking".into(),
            value: json!(true),
            mode: SettingMode::Raw,
            overwrite: true,
        };
        let mut body = json!({"input": {}});
        apply(std::slice::from_ref(&raw), P::Qwen, &mut body);
        assert_eq!(
            body,
            json!({"input": {}, "parameters": {"enable_thinking": true}})
        );
        let mut body = json!({});
        apply(&[raw], P::Claude, &mut body);
        assert_eq!(body, json!({"enable_thinking": true}));
    }

    #[test]
    fn unknown_auto_name_is_ignored() {
        let mut body = json!({});
        apply(&[auto("frequency_penalty", json!(1))], P::OpenAi, &mut body);
        assert_eq!(body, json!({}));
    }

    #[test]
    fn gemini_goes_under_generation_config_keeping_existing_fields() {
        let mut body = json!({"generation_config": {"temperature": 0.2}});
        apply(
            &[auto("top_k", json!(40)), auto("max_tokens", json!(128))],
            P::Gemini,
            &mut body,
        );
        assert_eq!(
            body,
            json!({"generation_config": {"temperature": 0.2, "topK": 40, "maxOutputTokens": 128}})
        );
    }
}
