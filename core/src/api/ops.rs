//! The operation table and the engine call behind each entry.
//!
//! Every entry of `OPERATIONS` has a function of the same name in the module of its object
//! (`resource::insert`), taking the handle and the arguments as owned values of the types
//! `Ty` stands for, and returning `Result` of the result type: the generated binding code
//! calls exactly that, so a mismatch between an entry and its function does not compile.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Arg, Effect, Object, Operation, Ty};

/// `Ty::PartitionFilter` as the engine takes it: a partition name and its leading values.
pub type PartitionFilter = Option<(String, Map<String, Value>)>;

/// `Ty::FoundMissing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundMissing {
    /// The records found, in the order asked.
    pub found: Vec<Value>,
    /// The ids that do not exist.
    pub missing: Vec<String>,
}

const fn arg(name: &'static str, ty: Ty) -> Arg {
    Arg { name, ty }
}

const ID: Arg = arg("id", Ty::Str);
const IDS: Arg = arg("ids", Ty::StrList);
const RECORD: Arg = arg("record", Ty::Record);
const NEW_RECORD: Arg = arg("record", Ty::NewRecord);
const CHANGES: Arg = arg("changes", Ty::Changes);
const PARTITION: Arg = arg("partition", Ty::PartitionFilter);

const fn resource_op(
    name: &'static str,
    js_name: &'static str,
    args: &'static [Arg],
    result: Ty,
    effect: Effect,
    doc: &'static str,
) -> Operation {
    Operation {
        object: Object::Resource,
        name,
        js_name,
        js_override: false,
        args,
        result,
        effect,
        io: true,
        doc,
    }
}

/// Every operation the bindings generate, in the order they appear in each binding.
pub const OPERATIONS: &[Operation] = &[
    resource_op(
        "insert",
        "insert",
        &[NEW_RECORD],
        Ty::Record,
        Effect::Write,
        "Inserts a record (its `id` generated when absent), validated against the resource's \
         attributes: create-only (ALREADY_EXISTS if the id is taken). One PUT, plus one per \
         partition. Returns the stored record with its id.",
    ),
    resource_op(
        "get",
        "get",
        &[ID],
        Ty::Record,
        Effect::Read,
        "The record with this id; NOT_FOUND if there is none. One GET.",
    ),
    resource_op(
        "exists",
        "exists",
        &[ID],
        Ty::Bool,
        Effect::Read,
        "Whether a record with this id exists. One HEAD.",
    ),
    resource_op(
        "update",
        "update",
        &[ID, CHANGES],
        Ty::Record,
        Effect::Write,
        "Merges `changes` (`null` removes a field) into the stored record by compare-and-swap \
         (one GET + one conditional PUT when uncontended; concurrent updates all survive). \
         Returns the merged record.",
    ),
    resource_op(
        "patch",
        "patch",
        &[ID, CHANGES],
        Ty::Record,
        Effect::Write,
        "s3db.js `patch`: the same merge as `update` (dotted keys change one nested field). \
         Returns the merged record.",
    ),
    resource_op(
        "replace",
        "replace",
        &[ID, RECORD],
        Ty::Record,
        Effect::Write,
        "Replaces the whole record `id`, which must exist (NOT_FOUND otherwise), validated as \
         an insert. One GET + one conditional PUT when uncontended. Returns the stored record.",
    ),
    resource_op(
        "upsert",
        "upsert",
        &[NEW_RECORD],
        Ty::Record,
        Effect::Write,
        "Inserts the record, or merges it into the existing record with its id. Returns the \
         stored record.",
    ),
    resource_op(
        "delete",
        "delete",
        &[ID],
        Ty::Unit,
        Effect::Write,
        "Deletes a record and its partition references: one HEAD + one conditional DELETE \
         (a GET instead of the HEAD when the resource has partitions). NOT_FOUND if missing.",
    ),
    resource_op(
        "list_ids",
        "listIds",
        &[PARTITION],
        Ty::StrList,
        Effect::Read,
        "Every id, or the ids of one partition's references matching the values given for \
         its leading fields. LIST requests only.",
    ),
    resource_op(
        "list",
        "list",
        &[PARTITION],
        Ty::Records,
        Effect::Read,
        "Every record (or one partition's, as `list_ids`): the ids, then a GET per record. \
         Records deleted meanwhile are skipped.",
    ),
    resource_op(
        "count",
        "count",
        &[PARTITION],
        Ty::U64,
        Effect::Read,
        "The number of records (or of one partition's, as `list_ids`). LIST requests only.",
    ),
    resource_op(
        "insert_many",
        "insertMany",
        &[arg("records", Ty::NewRecordList)],
        Ty::BatchItems,
        Effect::Write,
        "Inserts each record; one failure does not stop the others. Returns one entry per \
         record, in order: `{index, id, record}` or `{index, id, error: {code, message}}`.",
    ),
    resource_op(
        "get_many",
        "getMany",
        &[IDS],
        Ty::FoundMissing,
        Effect::Read,
        "The records of `ids`, one GET each: `{found: [records in the order asked], missing: \
         [ids that do not exist]}`.",
    ),
    resource_op(
        "delete_many",
        "deleteMany",
        &[IDS],
        Ty::BatchItems,
        Effect::Write,
        "Deletes each id; one failure does not stop the others. Returns one entry per id, in \
         order: `{index, id}` or `{index, id, error: {code, message}}`.",
    ),
    resource_op(
        "delete_all",
        "deleteAll",
        &[],
        Ty::U64,
        Effect::Write,
        "Deletes every record and partition reference; returns how many records were deleted. \
         Refused (INVALID_ARGUMENT) unless the resource was defined with `paranoid: false`.",
    ),
    resource_op(
        "query",
        "query",
        &[arg("filter", Ty::Filter)],
        Ty::Records,
        Effect::Read,
        "The records matching `filter`, e.g. `{\"status\": \"paid\", \"amount\": {\"$gte\": \
         10}}` (operators `$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options \
         $contains $not`, `$and $or $nor`, dotted paths; any other operator is INVALID_ARGUMENT). \
         Lists through the best-matching partition when the equalities fix its fields.",
    ),
];

/// The engine calls of `Object::Resource`'s operations.
pub mod resource {
    use super::{FoundMissing, PartitionFilter};
    use crate::db::resource::{BatchItem, Resource};
    use crate::error::Result;
    use serde_json::{Map, Value};

    fn part(p: &PartitionFilter) -> Option<(&str, &Map<String, Value>)> {
        p.as_ref().map(|(name, values)| (name.as_str(), values))
    }

    pub async fn insert(res: Resource, record: Value) -> Result<Value> {
        res.insert(record).await
    }

    pub async fn get(res: Resource, id: String) -> Result<Value> {
        res.get(&id).await
    }

    pub async fn exists(res: Resource, id: String) -> Result<bool> {
        res.exists(&id).await
    }

    pub async fn update(res: Resource, id: String, changes: Value) -> Result<Value> {
        res.update(&id, changes).await
    }

    pub async fn patch(res: Resource, id: String, changes: Value) -> Result<Value> {
        res.patch(&id, changes).await
    }

    pub async fn replace(res: Resource, id: String, record: Value) -> Result<Value> {
        res.replace(&id, record).await
    }

    pub async fn upsert(res: Resource, record: Value) -> Result<Value> {
        res.upsert(record).await
    }

    pub async fn delete(res: Resource, id: String) -> Result<()> {
        res.delete(&id).await
    }

    pub async fn list_ids(res: Resource, partition: PartitionFilter) -> Result<Vec<String>> {
        res.list_ids_in(part(&partition)).await
    }

    pub async fn list(res: Resource, partition: PartitionFilter) -> Result<Vec<Value>> {
        res.list_in(part(&partition)).await
    }

    pub async fn count(res: Resource, partition: PartitionFilter) -> Result<u64> {
        res.count_in(part(&partition)).await
    }

    pub async fn insert_many(res: Resource, records: Vec<Value>) -> Result<Vec<BatchItem>> {
        Ok(res.insert_many(records).await)
    }

    pub async fn get_many(res: Resource, ids: Vec<String>) -> Result<FoundMissing> {
        let (found, missing) = res.get_many(&ids).await?;
        Ok(FoundMissing { found, missing })
    }

    pub async fn delete_many(res: Resource, ids: Vec<String>) -> Result<Vec<BatchItem>> {
        Ok(res.delete_many(&ids).await)
    }

    pub async fn delete_all(res: Resource) -> Result<u64> {
        res.delete_all().await
    }

    pub async fn query(res: Resource, filter: Value) -> Result<Vec<Value>> {
        res.query(&filter).await
    }
}
