//! Filtering records by field conditions.

use serde_json::{json, Map, Value};

use super::*;
use crate::error::Result;
use crate::format::partition::PartitionFilter;
use crate::format::query::Filter;
use crate::format::schema::types::Kind;

impl Resource {
    /// Records matching a MongoDB-style filter (`{"status": "paid", "amount": {"$gte": 10}}`;
    /// operators and their meaning: [`crate::format::query`]). An unknown or malformed
    /// operator is an `InvalidArgument` error naming it. Equalities on partition fields pick
    /// the partition that fixes the most of them (then the longest leading run, then the
    /// fewest fields, then the name, as s3db.js ranks them); the rest is filtered in memory.
    pub async fn query(&self, filter: &Value) -> Result<Vec<Value>> {
        self.query_in(filter, None).await
    }

    /// As [`Resource::query`], within the records of a partition filter (checked and
    /// verified as [`Resource::list_in`] does) instead of a partition of its own choosing.
    pub async fn query_in(
        &self,
        filter: &Value,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<Value>> {
        if self.hooks.has("beforeQuery") {
            let mut context = json!({"filter": filter});
            if let Some((p, values)) = partition {
                context["partition"] = json!(p);
                context["partitionValues"] = Value::Object(values.clone());
            }
            self.hooks.notify("beforeQuery", context).await?;
        }
        let records = self.query_unhooked_in(filter, partition).await?;
        self.after_many("afterQuery", records).await
    }

    async fn query_unhooked_in(
        &self,
        filter: &Value,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<Value>> {
        let compiled = Filter::parse(filter)?;
        let plan = match partition {
            Some((name, values)) => Some(self.partition_filter(name, values)?),
            None => self.plan(&compiled),
        };
        // Filters see what is stored; read hooks then run on the matches.
        let candidates = match &plan {
            Some(f) => self.list_partition(f, false).await?,
            None => {
                let ids = self.list_ids_in(None).await?;
                self.fetch_all(ids, false).await?
            }
        };
        let mut found = Vec::new();
        for r in candidates {
            if compiled.matches(&r) {
                found.push(self.after("afterGet", r).await?);
            }
        }
        Ok(found)
    }

    /// The partition filter a query can use: equalities on scalar partition fields whose
    /// value has the field's type (any other value could not be the key's).
    fn plan(&self, filter: &Filter) -> Option<PartitionFilter> {
        let fixed = filter.equalities();
        if fixed.is_empty() || self.partitions.is_empty() {
            return None;
        }
        let def = self.def();
        let schema = def.schema();
        let usable = |path: &str| {
            schema.field(path).is_some_and(|f| {
                !matches!(
                    f.rule.kind,
                    Kind::Array(_)
                        | Kind::Embedding(_)
                        | Kind::Json
                        | Kind::GeoPoint(_)
                        | Kind::Secret
                        | Kind::Unsupported(_)
                )
            })
        };
        let mut best: Option<((usize, usize), PartitionFilter)> = None;
        for p in self.partitions.iter() {
            let mut values = Map::new();
            for (path, _) in &p.fields {
                let Some(v) = fixed.get(path) else { continue };
                let one = Map::from_iter([(path.clone(), v.clone())]);
                if usable(path) && self.partition_filter(&p.name, &one).is_ok() {
                    values.insert(path.clone(), v.clone());
                }
            }
            if values.is_empty() {
                continue;
            }
            let Ok(f) = self.partition_filter(&p.name, &values) else {
                continue;
            };
            let lead = p.coverage(&values);
            let score = (values.len(), lead);
            // Higher score wins; ties: fewer fields, then the name (partitions are sorted).
            let better = match &best {
                None => true,
                Some((s, b)) => {
                    score > *s || score == *s && p.fields.len() < b.partition().fields.len()
                }
            };
            if better {
                best = Some((score, f));
            }
        }
        best.map(|(_, f)| f)
    }
}
