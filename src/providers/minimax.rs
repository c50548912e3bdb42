//! minimax: chatcompletion_v2 models go through the OpenAI-compatible table; ChatCompletion Pro
//! models land with the translating-providers issue.

use super::{openai_compat, Provider};
use crate::config::ProviderConfig;

pub fn build(config: &ProviderConfig) -> Box<dyn Provider> {
    let row = openai_compat::row(config.kind).expect("minimax has a compat row");
    Box::new(openai_compat::CompatProvider::new(row))
}
