//! A registered pipeline: what the registry stores for it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::definition::PipelineDefinition;
use crate::pipeline::PipelineId;
use crate::status::RunStatus;
use crate::time::Timestamp;

/// A registered pipeline: its definition, who owns it, where its triggers go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub pipeline: PipelineId,
    /// The CloudFormation stack that registered it; only that stack may change or remove it.
    pub owner_stack_id: String,
    pub definition: PipelineDefinition,
    /// The EventBridge bus its triggers are sent to; absent means the configured default bus
    /// name in the pipeline's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_arn: Option<String>,
    /// When it was first registered: its cursor never starts earlier, so it never fires on history.
    pub registered_at: Timestamp,
    /// When its trigger last gained a condition or changed its set of parents: runs before this
    /// never count (DESIGN "Floor"). Never earlier than `registered_at`.
    #[serde(default)]
    pub trigger_floor: Timestamp,
}

impl Registration {
    /// Runs at or before this never count for it: the later of its registration and its
    /// trigger floor.
    pub fn floor(&self) -> Timestamp {
        self.registered_at.max(self.trigger_floor)
    }

    /// The parents its trigger mentions, with the statuses each can fire on.
    pub fn parents(&self) -> BTreeMap<PipelineId, BTreeSet<RunStatus>> {
        self.definition
            .trigger
            .as_ref()
            .map(|t| t.parents(&self.pipeline))
            .unwrap_or_default()
    }

    /// A digest of what the registration means (definition and bus), so an update that changes
    /// only formatting is recognised as no change.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "definition": self.definition,
            "busArn": self.bus_arn,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}
