//! Filtering records by field conditions.

use serde_json::{json, Map, Value};

use super::*;
use crate::error::{Error, Result};
use crate::format::query::{check_condition, equality, record_matches};

impl Resource {
    /// Records matching a filter (`{"status": "paid", "amount": {"$gte": 10}}`; operators
    /// `$eq $ne $gt $gte $lt $lte $in $nin $exists`; dotted paths). Uses the partition that
    /// fixes the most leading fields with equalities, else lists every record.
    pub async fn query(&self, filter: &Value) -> Result<Vec<Value>> {
        if self.hooks.has("beforeQuery") {
            self.hooks
                .notify("beforeQuery", json!({"filter": filter}))
                .await?;
        }
        let records = self.query_unhooked(filter).await?;
        self.after_many("afterQuery", records).await
    }

    pub(super) async fn query_unhooked(&self, filter: &Value) -> Result<Vec<Value>> {
        let filter = filter
            .as_object()
            .ok_or_else(|| Error::invalid("a query filter must be an object"))?;
        for cond in filter.values() {
            check_condition(cond)?;
        }
        let fixed: Map<String, Value> = filter
            .iter()
            .filter_map(|(k, c)| equality(c).map(|v| (k.clone(), v.clone())))
            .collect();
        let best = self
            .partitions
            .iter()
            .map(|p| (p.coverage(&fixed), p))
            .filter(|(c, _)| *c > 0)
            .max_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| b.1.fields.len().cmp(&a.1.fields.len()))
            });
        let ids = match best {
            Some((_, p)) => self.list_ids_in(Some((&p.name, &fixed))).await?,
            None => self.list_ids_in(None).await?,
        };
        // Filters see what is stored; read hooks then run on the matches.
        let mut found = Vec::new();
        for r in self.fetch_all(ids, false).await? {
            if record_matches(&r, filter) {
                found.push(self.after("afterGet", r).await?);
            }
        }
        Ok(found)
    }
}
