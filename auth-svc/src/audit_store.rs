//! The audit log in MongoDB: one document per record, kept for good.

use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{DateTime, Document, doc},
    options::IndexOptions,
};
use serde::{Deserialize, Serialize};
use smsops_common::{auth::Role, mongo::StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditDoc {
    /// The writer's record id: the same record again is a duplicate key.
    #[serde(rename = "_id")]
    pub id: String,
    /// `<at in ms, 13 digits>-<id>`: the newest-first order is this one
    /// field descending, and a page token is the last one a page showed.
    pub order: String,
    pub at: DateTime,
    pub recorded_at: DateTime,
    /// `user` or `service`.
    pub actor_kind: String,
    pub actor_id: String,
    /// Lower-cased, as users' emails are.
    pub actor_email: String,
    pub actor_role: Role,
    pub kind: String,
    /// The kind's part before the dot, for `kind=pair`.
    pub family: String,
    pub target: String,
    /// JSON objects of the changed fields.
    pub before: Option<String>,
    pub after: Option<String>,
}

impl AuditDoc {
    pub fn order_of(at: DateTime, id: &str) -> String {
        format!("{:013}-{id}", at.timestamp_millis().max(0))
    }
}

/// Which records to list.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub family: Option<String>,
    pub since: Option<DateTime>,
    /// Only records older in the order than this one (the page token).
    pub before_order: Option<String>,
}

#[derive(Clone)]
pub struct AuditStore {
    records: Collection<AuditDoc>,
}

impl AuditStore {
    /// Opens the `audit` collection and creates its indexes (idempotent).
    pub async fn open(client: &Client, database: &str) -> Result<Self, StoreError> {
        let store = Self {
            records: client.database(database).collection("audit"),
        };
        let unique = IndexOptions::builder()
            .unique(true)
            .name("order_unique".to_string())
            .build();
        store
            .records
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "order": -1 })
                    .options(unique)
                    .build(),
            )
            .await?;
        for field in ["actor_id", "actor_email", "kind", "family"] {
            store
                .records
                .create_index(
                    IndexModel::builder()
                        .keys(doc! { field: 1, "order": -1 })
                        .build(),
                )
                .await?;
        }
        Ok(store)
    }

    /// Inserts a record; [`StoreError::Duplicate`] when its id is known.
    pub async fn insert(&self, record: &AuditDoc) -> Result<(), StoreError> {
        self.records
            .insert_one(record)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Records matching `filter`, newest first.
    pub async fn list(&self, filter: AuditFilter, limit: i64) -> Result<Vec<AuditDoc>, StoreError> {
        let mut query = Document::new();
        if let Some(actor) = filter.actor {
            query.insert(
                "$or",
                vec![
                    doc! { "actor_id": &actor },
                    doc! { "actor_email": actor.to_lowercase() },
                ],
            );
        }
        if let Some(kind) = filter.kind {
            query.insert("kind", kind);
        }
        if let Some(family) = filter.family {
            query.insert("family", family);
        }
        if let Some(since) = filter.since {
            query.insert("at", doc! { "$gte": since });
        }
        if let Some(order) = filter.before_order {
            query.insert("order", doc! { "$lt": order });
        }
        let cursor = self
            .records
            .find(query)
            .sort(doc! { "order": -1 })
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }
}
