//! Country-operator pairs in MongoDB (database `sms_config`, collection
//! `country_operator` by default, as in the original system).

use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{DateTime, Document, doc},
    options::{IndexOptions, ReturnDocument},
};
use serde::{Deserialize, Serialize};
use smsops_common::mongo::StoreError;

use crate::core::route::RouteStep;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub country: String,
    pub operator: String,
    /// Lower-cased operator; with `country` it carries the unique index.
    pub operator_key: String,
    pub is_high_priority: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub created_by: String,
    /// Pairs older than routes have none.
    #[serde(default)]
    pub route: Vec<RouteStep>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct PairUpdate {
    pub country: Option<String>,
    pub operator: Option<String>,
    pub operator_key: Option<String>,
    pub is_high_priority: Option<bool>,
    pub route: Option<Vec<RouteStep>>,
}

#[derive(Clone)]
pub struct Store {
    pairs: Collection<PairDoc>,
}

impl Store {
    /// Opens the collection and creates its indexes (idempotent).
    pub async fn open(
        client: &Client,
        database: &str,
        collection: &str,
    ) -> Result<Self, StoreError> {
        let pairs = client.database(database).collection(collection);
        let unique = IndexOptions::builder()
            .unique(true)
            .name("country_operator_unique".to_string())
            .build();
        let model = IndexModel::builder()
            .keys(doc! { "country": 1, "operator_key": 1 })
            .options(unique)
            .build();
        pairs.create_index(model).await?;
        let by_priority = IndexModel::builder()
            .keys(doc! { "is_high_priority": 1, "_id": 1 })
            .build();
        pairs.create_index(by_priority).await?;
        Ok(Self { pairs })
    }

    pub async fn insert(&self, pair: &PairDoc) -> Result<(), StoreError> {
        self.pairs
            .insert_one(pair)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<PairDoc>, StoreError> {
        Ok(self.pairs.find_one(doc! { "_id": id }).await?)
    }

    /// Pairs in id order (UUIDv7, so creation order), after `after`.
    pub async fn list(
        &self,
        country: Option<&str>,
        is_high_priority: Option<bool>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PairDoc>, StoreError> {
        let mut filter = Document::new();
        if let Some(country) = country {
            filter.insert("country", country);
        }
        if let Some(flag) = is_high_priority {
            filter.insert("is_high_priority", flag);
        }
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        let cursor = self
            .pairs
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn update(
        &self,
        id: &str,
        update: PairUpdate,
    ) -> Result<Option<PairDoc>, StoreError> {
        let mut set = doc! { "updated_at": DateTime::now() };
        if let Some(country) = update.country {
            set.insert("country", country);
        }
        if let Some(operator) = update.operator {
            set.insert("operator", operator);
        }
        if let Some(key) = update.operator_key {
            set.insert("operator_key", key);
        }
        if let Some(flag) = update.is_high_priority {
            set.insert("is_high_priority", flag);
        }
        if let Some(route) = update.route {
            let steps: Vec<Document> = route
                .iter()
                .map(|step| {
                    doc! {
                        "provider": &step.provider,
                        "priority": i64::from(step.priority),
                        "weight": i64::from(step.weight),
                    }
                })
                .collect();
            set.insert("route", steps);
        }
        self.pairs
            .find_one_and_update(doc! { "_id": id }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .map_err(StoreError::classify)
    }

    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .pairs
            .delete_one(doc! { "_id": id })
            .await?
            .deleted_count
            == 1)
    }
}
