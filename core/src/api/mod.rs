//! The language-neutral surface: the one table that declares every operation the bindings
//! expose (`OPERATIONS`), its closed set of value types (`Ty`), and the engine calls the
//! generated binding code makes (`resource::…`), one uniform async function per entry.
//!
//! The bindings' code for an operation is generated from its entry by `tools/gen`
//! (`cargo run -p s3db-gen -- --write`): Python's awaitable and blocking methods, the C
//! blocking and `_async` functions, the Node Promise method, and their parts of the `.pyi`
//! and `.d.ts`. Adding an operation: its engine function here plus one table entry.

pub mod ops;

pub use ops::{resource, FoundMissing, PartitionFilter, OPERATIONS};

/// The nouns that own operations. Each binding maps one to its handle type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Resource,
}

impl Object {
    /// The name every language uses for it (`Resource`).
    pub const fn name(self) -> &'static str {
        match self {
            Object::Resource => "Resource",
        }
    }

    /// snake_case module of its engine calls (`resource`).
    pub const fn module(self) -> &'static str {
        match self {
            Object::Resource => "resource",
        }
    }

    /// What the C names of its operations start with after `s3db_`: empty for Resource (the
    /// historical `s3db_insert`, `s3db_get`…), `<object>_` for the others (`s3db_lock_…`).
    pub const fn c_prefix(self) -> &'static str {
        match self {
            Object::Resource => "",
        }
    }
}

/// The closed set of value types. Every binding knows how to convert each (arguments in,
/// results out); an operation uses only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A string (ids). Result: a string.
    Str,
    /// A list of strings (ids).
    StrList,
    /// A record: a JSON object (its `id` optional).
    Record,
    /// A record to create: a JSON object whose missing `id` a binding-level id generator
    /// (a Python callable, a JS function) may fill before the engine is called.
    NewRecord,
    /// A list of `NewRecord`s.
    NewRecordList,
    /// Changes to merge into a record: a JSON object (`null` removes a field).
    Changes,
    /// A query filter: a JSON object (`$eq $ne $gt $gte $lt $lte $in $nin $exists`).
    Filter,
    /// An optional partition restriction: a partition name and the values of its leading
    /// fields. Python: `partition=None, values=None`; Node: `{partition, partitionValues}`;
    /// C: the plain function, plus a `_partition` variant taking `partition, values_json`.
    PartitionFilter,
    /// Result: a list of records.
    Records,
    /// Result: a boolean.
    Bool,
    /// Result: an unsigned 64-bit count.
    U64,
    /// Result: nothing.
    Unit,
    /// Result: per-item outcomes of a batch, `[{index, id, record?, error?: {code, message}}]`.
    BatchItems,
    /// Result: `{found: [records], missing: [ids]}`.
    FoundMissing,
}

impl Ty {
    /// Whether the type carries JSON (C passes it as JSON text).
    pub const fn is_json(self) -> bool {
        !matches!(self, Ty::Str | Ty::Bool | Ty::U64 | Ty::Unit)
    }
}

/// Does the operation change stored data? (C: a write's result output may be NULL.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
}

/// One argument of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// snake_case; Python's parameter name, C's (with `_json` when `ty.is_json()`).
    pub name: &'static str,
    pub ty: Ty,
}

/// One operation, declared once for every language.
///
/// Names follow one rule: Python `name`; C `s3db_<object c_prefix><name>` and
/// `…_async`; Node `js_name`, which is lowerCamel(`name`) unless `js_override` says it is
/// s3db.js's own name for it.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub object: Object,
    /// snake_case.
    pub name: &'static str,
    /// The s3db.js (camelCase) name.
    pub js_name: &'static str,
    /// `js_name` is s3db.js's name, not lowerCamel(`name`).
    pub js_override: bool,
    pub args: &'static [Arg],
    pub result: Ty,
    pub effect: Effect,
    /// Does it do I/O (async in every binding)?
    pub io: bool,
    /// Language-neutral documentation (Markdown, one paragraph).
    pub doc: &'static str,
}

impl Operation {
    /// The C function name (`s3db_insert`).
    pub fn c_name(&self) -> String {
        format!("s3db_{}{}", self.object.c_prefix(), self.name)
    }

    /// Whether its last argument is an optional partition restriction.
    pub fn partitioned(&self) -> bool {
        self.args
            .last()
            .is_some_and(|a| a.ty == Ty::PartitionFilter)
    }
}

/// lowerCamelCase of a snake_case name (`list_ids` → `listIds`).
pub fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_follow_the_rule() {
        let mut seen = BTreeSet::new();
        for op in OPERATIONS {
            assert!(
                op.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !op.name.starts_with('_'),
                "{} is not snake_case",
                op.name
            );
            if !op.js_override {
                assert_eq!(
                    op.js_name,
                    lower_camel(op.name),
                    "{}: the Node name must be lowerCamel(name) unless marked as an s3db.js override",
                    op.name
                );
            }
            assert!(
                seen.insert((op.object.name(), op.name)),
                "{} declared twice",
                op.name
            );
            assert!(op.c_name().starts_with("s3db_"));
            for (i, a) in op.args.iter().enumerate() {
                assert!(
                    !matches!(
                        a.ty,
                        Ty::Records
                            | Ty::Bool
                            | Ty::U64
                            | Ty::Unit
                            | Ty::BatchItems
                            | Ty::FoundMissing
                    ),
                    "{}: {:?} is a result type",
                    op.name,
                    a.ty
                );
                assert!(
                    a.ty != Ty::PartitionFilter || i + 1 == op.args.len(),
                    "{}: a partition filter comes last",
                    op.name
                );
            }
            assert!(!op.doc.is_empty(), "{} has no doc", op.name);
        }
    }

    #[test]
    fn lower_camel_works() {
        assert_eq!(lower_camel("list_ids"), "listIds");
        assert_eq!(lower_camel("get"), "get");
        assert_eq!(lower_camel("delete_all"), "deleteAll");
    }
}
