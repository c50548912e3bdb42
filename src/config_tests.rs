//! Configuration acceptance (every seed example) and rejection (each invalid case, with its path).

use super::*;
use crate::error::ErrorCode;
use serde_json::json;

use crate::providers::{claude, deepl, gemini, hunyuan, minimax, openai_compat, qwen};

/// The shared fields, after the provider has accepted its own (as `Config::from_json` does).
fn parse(v: Value) -> Result<ProviderConfig, ConfigError> {
    let pc = ProviderConfig::from_json(v.to_string().as_bytes())?;
    crate::exchange::Config::new(pc.clone())?;
    Ok(pc)
}

fn rejects(v: Value, path: &str, reason_part: &str) {
    match parse(v.clone()) {
        Ok(_) => panic!("accepted invalid config {v}"),
        Err(e) => {
            assert_eq!(e.path, path, "path for {v}: {e}");
            assert!(
                e.reason.contains(reason_part),
                "reason {:?} lacks {reason_part:?}",
                e.reason
            );
        }
    }
}

/// Every configuration of the seed's usage examples, converted from its YAML to JSON unchanged
/// (tests/fixtures/seed_configs/), loads.
#[test]
fn every_seed_example_config_is_accepted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        crate::exchange::Config::from_json(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 17, "expected the seed's configs, found {n}");
}

fn minimal(kind: ProviderType) -> Value {
    let mut p = json!({"type": kind.name(), "apiTokens": ["k"]});
    let extra = match kind {
        ProviderType::Azure => {
            json!({"azureServiceUrl": "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-15-preview"})
        }
        ProviderType::Ollama => json!({"ollamaServerHost": "127.0.0.1"}),
        ProviderType::Hunyuan => json!({"hunyuanAuthId": "id", "hunyuanAuthKey": "key"}),
        ProviderType::Cloudflare => json!({"cloudflareAccountId": "acct"}),
        ProviderType::Deepl => json!({"targetLang": "ZH"}),
        ProviderType::Bedrock => json!({"awsRegion": "us-east-1"}),
        _ => json!({}),
    };
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "provider": p })
}

#[test]
fn all_21_provider_types_load_with_defaults() {
    // The seed's 21, plus the types added since (issue 14).
    assert!(ProviderType::ALL.len() >= 21);
    // Types refused at load with the reason (coze without `protocol: original`, dify, triton)
    // have tests of their own.
    let refused = [ProviderType::Coze, ProviderType::Dify, ProviderType::Triton];
    for kind in ProviderType::ALL
        .into_iter()
        .filter(|k| !refused.contains(k))
    {
        let c = parse(minimal(kind)).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        assert_eq!(c.kind, kind);
        assert_eq!(c.timeout_ms, 120_000);
        assert_eq!(c.protocol, Protocol::OpenAi);
        assert_eq!(claude::Settings::parse(&c).unwrap().version, "2023-06-01");
        if openai_compat::row(kind).is_some() {
            let s = openai_compat::CompatSettings::parse(kind, &c).unwrap();
            assert_eq!(s.ollama_server_port, 11434);
        }
    }
}

#[test]
fn every_documented_field_is_read() {
    let c = parse(json!({"provider": {
        "type": "openai", "apiTokens": ["a", "b"], "timeout": 5000, "protocol": "original",
        "modelMapping": {"gpt-4*": "x"},
        "customSettings": [{"name": "max_tokens", "value": 5, "mode": "raw", "overwrite": false}],
        "openaiCustomUrl": "www.example.com/myai/v1/chat/completions",
        "responseJsonSchema": {"name": "s", "schema": {"type": "object"}},
        "context": {"fileUrl": "http://file.svc/ai/context.txt", "serviceName": "file.dns", "servicePort": 80},
        "qwenEnableSearch": true, "minimaxGroupId": "g", "claudeVersion": "2024-01-01",
        "ollamaServerHost": "h", "ollamaServerPort": 1234, "hunyuanAuthId": "i", "hunyuanAuthKey": "k",
        "cloudflareAccountId": "c", "geminiSafetySetting": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"},
        "targetLang": "DE"
    }}))
    .unwrap();
    assert_eq!(c.api_tokens.len(), 2);
    assert_eq!(c.timeout_ms, 5000);
    assert_eq!(c.protocol, Protocol::Original);
    assert_eq!(
        c.custom_settings[0].mode,
        crate::custom_settings::SettingMode::Raw
    );
    assert!(!c.custom_settings[0].overwrite);
    let compat = openai_compat::CompatSettings::parse(ProviderType::OpenAi, &c).unwrap();
    let u = compat.openai_custom_url.as_ref().unwrap();
    assert_eq!(
        (u.authority.as_str(), u.path.as_str()),
        ("www.example.com", "/myai/v1/chat/completions")
    );
    assert!(compat.response_json_schema.is_some());
    let ctx = c.context.as_ref().unwrap();
    assert_eq!(
        (
            ctx.authority.as_str(),
            ctx.path.as_str(),
            ctx.service_name.as_str(),
            ctx.service_port
        ),
        ("file.svc", "/ai/context.txt", "file.dns", 80)
    );
    assert!(qwen::Settings::parse(&c).unwrap().enable_search);
    assert_eq!(
        minimax::Settings::parse(&c).unwrap().group_id.as_deref(),
        Some("g")
    );
    assert_eq!(claude::Settings::parse(&c).unwrap().version, "2024-01-01");
    assert_eq!(
        (
            compat.ollama_server_host.as_deref(),
            compat.ollama_server_port
        ),
        (Some("h"), 1234)
    );
    assert_eq!(hunyuan::Settings::parse(&c).unwrap().auth_id.expose(), "i");
    assert_eq!(compat.cloudflare_account_id.as_deref(), Some("c"));
    assert_eq!(
        gemini::Settings::parse(&c).unwrap().safety_setting,
        vec![(
            "HARM_CATEGORY_HARASSMENT".to_string(),
            "BLOCK_NONE".to_string()
        )]
    );
    assert_eq!(deepl::Settings::parse(&c).unwrap().target_lang, "DE");
}

#[test]
fn invalid_json_and_shapes() {
    let e = ProviderConfig::from_json(b"{not json").unwrap_err();
    assert_eq!(e.code, ErrorCode::ConfigJson);
    #[rustfmt::skip]
    let cases = [
        (json!([1]), "", "expected an object"),
        (json!({}), "provider", "missing"),
        (json!({"provider": "openai"}), "provider", "expected an object, found string"),
        (json!({"provider": {}}), "provider.type", "missing"),
        (json!({"provider": {"type": 3}}), "provider.type", "expected a string, found number"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
}

#[test]
fn unknown_type_names_the_accepted_ones() {
    rejects(
        json!({"provider": {"type": "openia", "apiTokens": ["k"]}}),
        "provider.type",
        "unknown provider type 'openia'",
    );
    let e = parse(json!({"provider": {"type": "x"}})).unwrap_err();
    assert!(e.reason.contains("openai") && e.reason.contains("deepl"));
}

#[test]
fn wrong_json_types_name_the_field() {
    let pk = |kind: ProviderType, extra: Value| {
        let mut v = minimal(kind);
        v["provider"]
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let p = |extra: Value| pk(ProviderType::OpenAi, extra);
    #[rustfmt::skip]
    let cases = [
        (p(json!({"apiTokens": "k"})), "provider.apiTokens", "expected an array of strings"),
        (p(json!({"apiTokens": ["k", 2]})), "provider.apiTokens[1]", "expected a string"),
        (p(json!({"timeout": "1s"})), "provider.timeout", "expected a number"),
        (p(json!({"timeout": -1})), "provider.timeout", "non-negative integer"),
        (p(json!({"modelMapping": {"a": 1}})), "provider.modelMapping.a", "expected a string"),
        (p(json!({"modelMapping": []})), "provider.modelMapping", "expected an object"),
        (p(json!({"protocol": "grpc"})), "provider.protocol", "unknown protocol"),
        (p(json!({"customSettings": {}})), "provider.customSettings", "expected an array"),
        (p(json!({"customSettings": [{"value": 1}]})), "provider.customSettings[0].name", "missing"),
        (p(json!({"customSettings": [{"name": "x"}]})), "provider.customSettings[0].value", "missing"),
        (p(json!({"customSettings": [{"name": "x", "value": [1]}]})), "provider.customSettings[0].value", "string, number or boolean"),
        (p(json!({"customSettings": [{"name": "x", "value": 1, "mode": "fancy"}]})), "provider.customSettings[0].mode", "unknown mode"),
        (p(json!({"customSettings": [{"name": "x", "value": 1, "overwrite": "no"}]})), "provider.customSettings[0].overwrite", "expected a boolean"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
    // A provider's own fields are typed by that provider.
    #[rustfmt::skip]
    let cases = [
        (pk(ProviderType::Qwen, json!({"qwenEnableSearch": "yes"})), "provider.qwenEnableSearch", "expected a boolean"),
        (p(json!({"responseJsonSchema": "s"})), "provider.responseJsonSchema", "expected an object"),
        (pk(ProviderType::Gemini, json!({"geminiSafetySetting": {"A": 1}}),), "provider.geminiSafetySetting.A", "expected a string"),
        (p(json!({"context": {"serviceName": "s", "servicePort": 80}})), "provider.context.fileUrl", "missing"),
        (p(json!({"context": {"fileUrl": "http://a/b", "serviceName": "s", "servicePort": 70000}})), "provider.context.servicePort", "between 1 and 65535"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
}

#[test]
fn missing_required_fields_per_provider() {
    let without = |kind: ProviderType, field: &str| {
        let mut v = minimal(kind);
        v["provider"].as_object_mut().unwrap().remove(field);
        v
    };
    #[rustfmt::skip]
    let cases = [
        (without(ProviderType::Azure, "azureServiceUrl"), "provider.azureServiceUrl", "required for provider type 'azure'"),
        (without(ProviderType::Ollama, "ollamaServerHost"), "provider.ollamaServerHost", "required"),
        (without(ProviderType::Hunyuan, "hunyuanAuthId"), "provider.hunyuanAuthId", "required"),
        (without(ProviderType::Hunyuan, "hunyuanAuthKey"), "provider.hunyuanAuthKey", "required"),
        (without(ProviderType::Cloudflare, "cloudflareAccountId"), "provider.cloudflareAccountId", "required"),
        (without(ProviderType::Deepl, "targetLang"), "provider.targetLang", "required"),
        (without(ProviderType::OpenAi, "apiTokens"), "provider.apiTokens", "at least one non-empty token"),
        (without(ProviderType::Claude, "apiTokens"), "provider.apiTokens", "required for provider type 'claude'"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
    // Ollama and Hunyuan need no token (the seed's Hunyuan example has `apiTokens: [""]`).
    parse(without(ProviderType::Ollama, "apiTokens")).unwrap();
    parse(without(ProviderType::Hunyuan, "apiTokens")).unwrap();
}

#[test]
fn context_conflicts_with_native_file_context() {
    let ctx = json!({"fileUrl": "http://f/a.txt", "serviceName": "s", "servicePort": 80});
    #[rustfmt::skip]
    let cases = [
        (json!({"provider": {"type": "moonshot", "apiTokens": ["k"], "moonshotFileId": "f", "context": ctx}}), "provider.context", "moonshotFileId"),
        (json!({"provider": {"type": "qwen", "apiTokens": ["k"], "qwenFileIds": ["f"], "context": ctx}}), "provider.context", "qwenFileIds"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
}

#[test]
fn azure_rules() {
    let url = "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-15-preview";
    #[rustfmt::skip]
    let cases = [
        (json!({"provider": {"type": "azure", "apiTokens": ["a", "b"], "azureServiceUrl": url}}), "provider.apiTokens", "exactly one"),
        (json!({"provider": {"type": "azure", "apiTokens": ["a"], "azureServiceUrl": "https://r.openai.azure.com/openai/deployments/d/chat/completions"}}), "provider.azureServiceUrl", "api-version"),
        (json!({"provider": {"type": "azure", "apiTokens": ["a"], "azureServiceUrl": "https://r/x?api-version="}}), "provider.azureServiceUrl", "api-version"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
}

#[test]
fn minimax_pro_mapping_needs_group_id() {
    rejects(
        json!({"provider": {"type": "minimax", "apiTokens": ["k"], "modelMapping": {"*": "abab6.5s-chat"}}}),
        "provider.minimaxGroupId",
        "abab6.5s-chat",
    );
    parse(json!({"provider": {"type": "minimax", "apiTokens": ["k"], "modelMapping": {"*": "abab6.5g-chat"}}})).unwrap();
}

#[test]
fn secrets_never_print() {
    let c = parse(json!({"provider": {"type": "hunyuan", "apiTokens": ["tok-SECRET-1"], "hunyuanAuthId": "ID-SECRET-2", "hunyuanAuthKey": "KEY-SECRET-3"}})).unwrap();
    let dbg = format!("{c:?}");
    for s in ["tok-SECRET-1", "ID-SECRET-2", "KEY-SECRET-3"] {
        assert!(!dbg.contains(s), "{s} leaked in Debug");
    }
    // Errors about a token field do not echo the token either.
    let e = parse(json!({"provider": {"type": "azure", "apiTokens": ["tok-SECRET-1", "tok-SECRET-4"], "azureServiceUrl": "https://r/x?api-version=1"}})).unwrap_err();
    assert!(!e.to_string().contains("SECRET"));
}

#[test]
fn token_choice_is_random_among_configured() {
    let c = parse(json!({"provider": {"type": "openai", "apiTokens": ["a", "b", "c"]}})).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        seen.insert(c.pick_token().to_string());
    }
    assert_eq!(seen.len(), 3, "all tokens get used: {seen:?}");
}

#[test]
fn config_handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::exchange::Config>();
    assert_send_sync::<std::sync::Arc<crate::exchange::Config>>();
}

/// Higress's own documentation examples for the types issue 14 adds
/// (tests/fixtures/higress_configs/, see its README) load unchanged.
#[test]
fn every_higress_example_config_is_accepted() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/higress_configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let c = crate::exchange::Config::from_json(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            c.warnings().is_empty(),
            "{}: {:?}",
            path.display(),
            c.warnings()
        );
        n += 1;
    }
    assert!(n >= 11, "expected Higress's examples, found {n}");
    // Higress's Triton, Dify and Vertex OpenAI-compatible examples are refused with the reason
    // (see providers::unsupported and providers::vertex).
    let triton = json!({"provider": {"type": "triton", "tritonDomain": "<LOCAL_TRITON_DOMAIN>",
        "tritonModelVersion": "<MODEL_VERSION>", "apiTokens": ["****"], "modelMapping": {"*": "gpt2"}}});
    let dify = json!({"provider": {"type": "dify", "apiTokens": ["YOUR_DIFY_API_TOKEN"],
        "modelMapping": {"*": "dify"}}});
    let vertex_compat = json!({"provider": {"type": "vertex", "vertexOpenAICompatible": true,
        "vertexAuthKey": "{\n  \"type\": \"service_account\",\n  \"project_id\": \"your-project-id\",\n  \"private_key_id\": \"your-private-key-id\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"your-service-account@your-project.iam.gserviceaccount.com\",\n  \"token_uri\": \"https://oauth2.googleapis.com/token\"\n}\n",
        "vertexRegion": "us-central1", "vertexProjectId": "your-project-id",
        "vertexAuthServiceName": "your-auth-service-name",
        "modelMapping": {"gpt-4": "gemini-2.0-flash", "*": "gemini-1.5-flash"}}});
    for (example, why, field) in [
        (triton, "Triton", "provider.type"),
        (dify, "Dify", "provider.type"),
        (
            vertex_compat,
            "OpenAI-compatible",
            "provider.vertexOpenAICompatible",
        ),
    ] {
        let e = crate::exchange::Config::from_json(example.to_string().as_bytes()).unwrap_err();
        assert!(e.reason.contains(why), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn issue_14_types_load_with_minimal_configs() {
    for (kind, extra) in [
        ("github", json!({})),
        ("grok", json!({})),
        ("together-ai", json!({})),
        ("openrouter", json!({})),
        ("fireworks", json!({})),
        ("longcat", json!({})),
        ("doubao", json!({})),
        ("vllm", json!({})),
        ("generic", json!({})),
        ("cohere", json!({})),
        ("coze", json!({"protocol": "original"})),
    ] {
        let mut p = json!({"type": kind, "apiTokens": ["k"]});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let c = parse(json!({ "provider": p })).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(c.kind.name(), kind);
    }
    // Self-hosted types need no token; hosted ones do.
    parse(json!({"provider": {"type": "vllm"}})).unwrap();
    parse(json!({"provider": {"type": "generic"}})).unwrap();
    #[rustfmt::skip]
    let cases = [
        (json!({"provider": {"type": "grok"}}), "provider.apiTokens", "required"),
        (json!({"provider": {"type": "vllm", "vllmCustomUrl": "http:// bad"}}), "provider.vllmCustomUrl", "URL"),
    ];
    for (config, field, reason) in cases {
        rejects(config, field, reason);
    }
}
