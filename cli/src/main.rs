//! `s3db`: the command-line tool of the s3db document database.
//!
//! Every command connects to the store named by `--connection` / `S3DB_CONNECTION`, does one
//! thing and exits with a code that tells what went wrong (see [`exit`]).

mod commands;
mod exit;
mod output;
mod progress;
mod transfer;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use s3db::Database;
use serde_json::Value;

use exit::Failure;
use output::Out;

const LONG_ABOUT: &str = "The s3db command-line tool: inspect a store, read and write records, \
query, and stream whole resources in and out as NDJSON or CSV.

The store is named by --connection or the S3DB_CONNECTION environment variable: memory://bucket/prefix, \
file:///abs/path, s3://KEY:SECRET@bucket/prefix?region=..., http(s)://KEY:SECRET@host:port/bucket/prefix. \
The connection string is never printed.";

#[derive(Parser, Debug)]
#[command(
    name = "s3db",
    version,
    about = "The s3db command-line tool",
    long_about = LONG_ABOUT,
    after_help = exit::help_text(),
    propagate_version = true
)]
struct Cli {
    /// Connection string of the store (credentials are never printed)
    #[arg(
        long,
        short = 'c',
        env = "S3DB_CONNECTION",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    connection: Option<String>,

    /// Passphrase of secret fields (default: s3db.js's "secret")
    #[arg(
        long,
        env = "S3DB_PASSPHRASE",
        hide_env_values = true,
        global = true,
        value_name = "PASSPHRASE"
    )]
    passphrase: Option<String>,

    /// Machine-readable output: one JSON document per command (NDJSON for export)
    #[arg(long, global = true)]
    json: bool,

    /// Print the session's request counts to stderr at exit
    #[arg(long, global = true)]
    stats: bool,

    /// No progress bars or progress lines
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone, Default)]
struct PartitionArgs {
    /// Read through this partition's references
    #[arg(long, value_name = "PARTITION")]
    partition: Option<String>,
    /// A partition field's value (repeatable; leading fields first)
    #[arg(long = "value", value_name = "FIELD=VALUE", requires = "partition")]
    values: Vec<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON record per line
    Ndjson,
    /// A header row, then one record per row (see cli/README.md)
    Csv,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Names of the resources in the catalog
    Resources,
    /// A resource's definition as JSON (attributes, behavior, partitions, versions, ...)
    Describe {
        /// Resource name
        resource: String,
    },
    /// Defines (or redefines) a resource from a definition: `describe --json` output, the
    /// options object ({"attributes": ..., "behavior": ..., "partitions": ...}) or a bare
    /// attribute map; `-` reads it from stdin
    Define {
        /// Resource name
        resource: String,
        /// The definition (JSON), or `-` for stdin
        #[arg(value_name = "JSON|-")]
        definition: String,
    },
    /// One record
    Get {
        /// Resource name
        resource: String,
        /// Record id
        id: String,
    },
    /// Inserts a record (JSON object; `-` reads it from stdin)
    Insert {
        /// Resource name
        resource: String,
        /// The record (JSON object), or `-` for stdin
        #[arg(value_name = "JSON|-")]
        record: String,
    },
    /// Merges changes into a record (dotted keys change one nested field; null removes)
    Update {
        /// Resource name
        resource: String,
        /// Record id
        id: String,
        /// Changes to merge (JSON object), or `-` for stdin
        #[arg(value_name = "JSON|-")]
        changes: String,
    },
    /// Deletes a record
    Delete {
        /// Resource name
        resource: String,
        /// Record id
        id: String,
    },
    /// Records of a resource (or of one partition)
    List {
        /// Resource name
        resource: String,
        #[command(flatten)]
        partition: PartitionArgs,
        /// At most this many records
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Records matching a filter: {"status": "paid", "amount": {"$gte": 10}}
    /// (operators $eq $ne $gt $gte $lt $lte $in $nin $exists; dotted paths)
    Query {
        /// Resource name
        resource: String,
        /// The filter (JSON object), or `-` for stdin
        #[arg(value_name = "FILTER-JSON|-")]
        filter: String,
        #[command(flatten)]
        partition: PartitionArgs,
        /// At most this many records
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Number of records (of a resource or one partition)
    Count {
        /// Resource name
        resource: String,
        #[command(flatten)]
        partition: PartitionArgs,
    },
    /// Streams every record out, a page at a time
    Export {
        /// Resource name
        resource: String,
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Write here instead of stdout
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Records per page (one LIST + a GET per record)
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
        page_size: u16,
    },
    /// Streams records in, inserting them in batches; a failed record is reported and
    /// skipped (exit code 3 when any failed)
    Import {
        /// Resource name
        resource: String,
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Read from here instead of stdin
        #[arg(long, short = 'i', value_name = "FILE")]
        input: Option<PathBuf>,
        /// Records per insert_many batch
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..))]
        batch_size: u16,
        /// Batches inserted at once, each 16 records at a time (with more than 1, which of two
        /// records with the same id in different batches wins is not defined)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
        parallel: u8,
    },
    /// Who holds a lock: holder, fencing token, expiry, or "free"
    Lock {
        /// Lock name
        name: String,
    },
    /// A sequence's current value (the value its next `next` hands out)
    Sequence {
        /// Sequence name
        name: String,
    },
    /// Every sequence and its current value
    Sequences,
    /// Reconnects (healing the catalog if it needs it) and prints the healing log
    Heal,
    /// Requests this session has sent so far, by kind
    Stats,
    /// Shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command can reach: options and the lazily opened database.
pub struct Ctx {
    connection: Option<String>,
    passphrase: Option<String>,
    pub json: bool,
    pub quiet: bool,
    db: tokio::sync::OnceCell<Database>,
}

impl Ctx {
    pub async fn db(&self) -> Result<&Database, Failure> {
        self.db
            .get_or_try_init(|| async {
                let conn = self.connection.as_deref().filter(|c| !c.is_empty());
                let conn = conn.ok_or_else(|| {
                    Failure::Usage(
                        "no store: pass --connection URL or set S3DB_CONNECTION".to_string(),
                    )
                })?;
                let options = s3db::ConnectOptions {
                    passphrase: self.passphrase.clone(),
                };
                Database::connect_with(conn, options)
                    .await
                    .map_err(Failure::from)
            })
            .await
    }

    pub fn passphrase(&self) -> &str {
        self.passphrase
            .as_deref()
            .unwrap_or(s3db::crypto::DEFAULT_PASSPHRASE)
    }

    fn opened(&self) -> Option<&Database> {
        self.db.get()
    }
}

/// A JSON argument, or stdin when it is `-`.
pub fn json_arg(what: &str, text: &str) -> Result<Value, Failure> {
    let text = if text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::Local(format!("reading {what} from stdin: {e}")))?;
        s
    } else {
        text.to_string()
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::Engine(s3db::Error::invalid(format!("{what}: invalid JSON: {e}"))))
}

/// Masks the `user:password@` part of every URL in `text`.
fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and exit 0; usage errors exit 2. A usage
            // error may quote an argument: credentials in a URL are masked.
            if e.use_stderr() {
                eprint!("{}", redact_urls(&e.render().to_string()));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let ctx = Ctx {
        connection: cli.connection.clone(),
        passphrase: cli.passphrase.clone(),
        json: cli.json,
        quiet: cli.quiet,
        db: tokio::sync::OnceCell::new(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[LOCAL]: starting the async runtime: {e}");
            return ExitCode::from(exit::LOCAL);
        }
    };
    let mut out = Out::stdout();
    let result = runtime.block_on(run(&ctx, cli.command, &mut out));
    let result = result.and_then(|()| out.flush().map_err(Failure::from));
    if cli.stats {
        if let Some(db) = ctx.opened() {
            output::print_stats_stderr(&db.stats(), cli.json);
        }
    }
    let code = match result {
        Ok(()) => 0,
        Err(f) => {
            f.report();
            f.code()
        }
    };
    drop(runtime);
    ExitCode::from(code)
}

async fn run(ctx: &Ctx, command: Command, out: &mut Out) -> Result<(), Failure> {
    use commands as c;
    match command {
        Command::Resources => c::resources(ctx, out).await,
        Command::Describe { resource } => c::describe(ctx, out, &resource).await,
        Command::Define {
            resource,
            definition,
        } => c::define(ctx, out, &resource, &definition).await,
        Command::Get { resource, id } => c::get(ctx, out, &resource, &id).await,
        Command::Insert { resource, record } => c::insert(ctx, out, &resource, &record).await,
        Command::Update {
            resource,
            id,
            changes,
        } => c::update(ctx, out, &resource, &id, &changes).await,
        Command::Delete { resource, id } => c::delete(ctx, out, &resource, &id).await,
        Command::List {
            resource,
            partition,
            limit,
        } => c::list(ctx, out, &resource, &partition, limit).await,
        Command::Query {
            resource,
            filter,
            partition,
            limit,
        } => c::query(ctx, out, &resource, &filter, &partition, limit).await,
        Command::Count {
            resource,
            partition,
        } => c::count(ctx, out, &resource, &partition).await,
        Command::Export {
            resource,
            format,
            output,
            page_size,
        } => transfer::export(ctx, out, &resource, format, output, page_size as usize).await,
        Command::Import {
            resource,
            format,
            input,
            batch_size,
            parallel,
        } => {
            transfer::import(
                ctx,
                out,
                &resource,
                format,
                input,
                batch_size as usize,
                parallel as usize,
            )
            .await
        }
        Command::Lock { name } => c::lock(ctx, out, &name).await,
        Command::Sequence { name } => c::sequence(ctx, out, &name).await,
        Command::Sequences => c::sequences(ctx, out).await,
        Command::Heal => c::heal(ctx, out).await,
        Command::Stats => c::stats(ctx, out).await,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "s3db", &mut buf);
            out.bytes(&buf).map_err(Failure::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_urls("unexpected argument 'http://AK:s3cr%2Ft@host:9000/b/p' found"),
            "unexpected argument 'http://***@host:9000/b/p' found"
        );
        assert_eq!(
            redact_urls("s3://KEY:SECRET@bucket/prefix and file:///tmp/x"),
            "s3://***@bucket/prefix and file:///tmp/x"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
