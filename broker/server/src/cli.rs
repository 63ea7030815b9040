//! The command line: clap definitions and the dispatch of each command.

use crate::check::{check_input, Tally};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use twinwire_protocol::DEFAULT_MAX_ENVELOPE_BYTES;

/// twinwire: a message broker for digital twins that speaks the Eclipse Ditto Protocol.
#[derive(Debug, Parser)]
#[command(name = "twinwire", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker: the HTTP API, WebSocket and SSE on 127.0.0.1:8080 by default, the
    /// twins in the data directory. With no authentication configured, a development user is
    /// created and printed. Stops on SIGINT or SIGTERM, flushing the journal.
    Run {
        /// twinwire.yaml with the settings (every setting has a default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to listen, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Where the journal lives [default: $XDG_DATA_HOME/twinwire or ~/.local/share/twinwire].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The directory of connection YAML files.
        #[arg(long)]
        connections: Option<PathBuf>,
        /// The directory of adapter plugins.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// A basic auth user NAME:PASSWORD, authenticated as the subject nginx:NAME; repeatable.
        #[arg(long = "user")]
        users: Vec<String>,
        /// How log lines are written to stderr: `text` for people, `json` (one object a line)
        /// for log collectors. The level comes from RUST_LOG (default info).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Check a directory of connection YAML files (or one file): every problem with its file,
    /// line and field, and what to do; warnings where a route cannot be acknowledged end to
    /// end. Exits 0 when every connection is usable, 1 otherwise, 2 when nothing can be read.
    Check {
        /// The connection directory or file.
        path: PathBuf,
        /// The adapter plugin directory: also warn where a connection's adapter is missing or
        /// cannot settle what its sources consume.
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
    /// Work with Ditto Protocol messages.
    Protocol {
        #[command(subcommand)]
        command: ProtocolCommand,
    },
    /// Run twin commands from stdin: one Ditto Protocol command per line in; its response (or
    /// error response) and then the events it caused out, one JSON line each, in input order,
    /// each written once it is durable. The things persist in the data directory.
    Pipe {
        /// Where the journal lives [default: $XDG_DATA_HOME/twinwire or ~/.local/share/twinwire].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// An authorization subject the commands act as, `issuer:subject`; repeatable. The first
        /// is their `ditto-originator` and the one a default policy grants
        /// [default: pre-authenticated:twinwire-pipe].
        #[arg(long = "subject")]
        subjects: Vec<String>,
        /// Check no policy: local administration (bulk import, repair). Never expose this.
        #[arg(long)]
        unrestricted: bool,
        /// Refuse a policy that would leave no subject allowed to write it (Ditto's lockout
        /// prevention).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        policy_lockout_prevention: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProtocolCommand {
    /// Check Ditto Protocol messages: one line per message, `ok <signal-type>` or
    /// `error <status> <error-code>: <message>`. Exits 0 when all are valid, 1 otherwise.
    ///
    /// Input is JSON lines, whole JSON documents, or Markdown whose ```json blocks hold the
    /// messages (by the .md extension, or sniffed on stdin).
    Check {
        /// Files to check; none or `-` reads stdin.
        files: Vec<PathBuf>,
        /// The largest message accepted, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
}

/// Runs a parsed command line, returning the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { path, plugins } => check_connections(&path, plugins.as_deref()),
        Command::Run {
            config,
            listen,
            data_dir,
            connections,
            plugins,
            users,
            log_format,
        } => {
            init_logging_as("info", log_format);
            let overrides = RunFlags {
                listen,
                data_dir,
                connections,
                plugins,
                users,
            };
            run_broker(config, overrides)
        }
        Command::Protocol {
            command: ProtocolCommand::Check { files, max_bytes },
        } => protocol_check(&files, max_bytes),
        Command::Pipe {
            data_dir,
            subjects,
            unrestricted,
            policy_lockout_prevention,
        } => pipe(data_dir, subjects, unrestricted, policy_lockout_prevention),
    }
}

fn check_connections(path: &Path, plugin_dir: Option<&Path>) -> ExitCode {
    use twinwire_core::connections::plugins::Plugins;
    use twinwire_core::connections::{adapter_warnings, load_dir, load_file, Severity};
    let plugins = plugin_dir.map(Plugins::load_dir);
    let env = |name: &str| std::env::var(name).ok();
    let loaded = if path.is_dir() {
        match load_dir(path, &env) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("twinwire: {e}");
                return ExitCode::from(EXIT_IO_ERROR);
            }
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(text) => vec![load_file(path, &text, &env)],
            Err(e) => {
                eprintln!("twinwire: cannot read {}: {e}", path.display());
                return ExitCode::from(EXIT_IO_ERROR);
            }
        }
    };
    let mut loaded = loaded;
    if let Some(plugins) = &plugins {
        for file in &mut loaded {
            if let Some(connection) = &file.connection {
                let settles = plugins.settles(connection.connection_type.as_str());
                file.problems.extend(adapter_warnings(connection, settles));
            }
        }
    }
    let (mut errors, mut warnings) = (0, 0);
    for file in &loaded {
        for problem in &file.problems {
            match problem.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            let line = problem.line.map(|l| format!(":{l}")).unwrap_or_default();
            println!("{}{line}: {problem}", file.path.display());
        }
        if let Some(connection) = &file.connection {
            if file.is_usable() {
                println!(
                    "{}: ok: connection {} ({})",
                    file.path.display(),
                    connection.id,
                    connection.connection_type
                );
            }
        }
    }
    println!(
        "{} files, {errors} errors, {warnings} warnings",
        loaded.len()
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `twinwire run` flags that override the file.
struct RunFlags {
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    connections: Option<PathBuf>,
    plugins: Option<PathBuf>,
    users: Vec<String>,
}

fn run_broker(config_file: Option<PathBuf>, flags: RunFlags) -> ExitCode {
    let mut config = match &config_file {
        Some(path) => match crate::config::Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("twinwire: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => crate::config::Config::default(),
    };
    config.listen = flags.listen.unwrap_or(config.listen);
    config.data_dir = flags.data_dir.or(config.data_dir);
    config.connections = flags.connections.or(config.connections);
    config.plugins = flags.plugins.or(config.plugins);
    if let Err(e) = crate::run::add_flag_users(&mut config, &flags.users) {
        eprintln!("twinwire: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("twinwire: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_IO_ERROR);
        }
    };
    let result = runtime.block_on(async {
        let running = crate::run::start(config, true).await?;
        let scheme = if running.tls { "https" } else { "http" };
        println!("twinwire listening on {scheme}://{}", running.addr);
        if let Some((user, password)) = &running.development_user {
            println!(
                "development user (no authentication configured): {user} / {password} \
                 (subject nginx:{user}); try: curl -u {user}:{password} {scheme}://{}/api/2/whoami",
                running.addr
            );
        }
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twinwire: {e}");
            ExitCode::from(EXIT_IO_ERROR)
        }
    }
}

fn pipe(
    data_dir: Option<PathBuf>,
    mut subjects: Vec<String>,
    unrestricted: bool,
    policy_lockout_prevention: bool,
) -> ExitCode {
    init_logging();
    if subjects.is_empty() {
        subjects.push(crate::pipe::DEFAULT_SUBJECT.to_owned());
    }
    let auth = match twinwire_core::auth::AuthContext::new(subjects) {
        Ok(auth) if unrestricted => auth.unrestricted(),
        Ok(auth) => auth,
        Err(e) => {
            eprintln!("twinwire: --subject: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = crate::pipe::PipeOptions {
        data_dir: data_dir.unwrap_or_else(crate::pipe::default_data_dir),
        auth,
        policy_lockout_prevention,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("twinwire: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_IO_ERROR);
        }
    };
    let input = io::BufReader::new(io::stdin());
    match runtime.block_on(crate::pipe::run(input, io::stdout(), options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twinwire: {e}");
            ExitCode::from(EXIT_IO_ERROR)
        }
    }
}

/// Logs go to stderr (stdout carries the protocol), at `warn` unless `RUST_LOG` says otherwise.
fn init_logging() {
    init_logging_at("warn");
}

fn init_logging_at(level: &str) {
    init_logging_as(level, LogFormat::Text);
}

/// How `twinwire run` writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging_as(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Exit code for an input that could not be read (as opposed to 1, "a message is invalid").
const EXIT_IO_ERROR: u8 = 2;
/// Exit code for a bad command line, as clap uses.
const EXIT_USAGE: u8 = 2;

fn protocol_check(files: &[PathBuf], max_bytes: usize) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() {
        &stdin_only[..]
    } else {
        files
    };
    for file in files {
        let result = if file == Path::new("-") {
            check_input(io::stdin().lock(), None, max_bytes, &mut out, &mut tally)
        } else {
            File::open(file).and_then(|f| {
                check_input(
                    BufReader::new(f),
                    Some(file),
                    max_bytes,
                    &mut out,
                    &mut tally,
                )
            })
        };
        if let Err(e) = result {
            let _ = out.flush();
            if e.kind() == io::ErrorKind::BrokenPipe {
                return ExitCode::from(EXIT_IO_ERROR);
            }
            eprintln!("twinwire: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_IO_ERROR);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(EXIT_IO_ERROR);
    }
    if tally.all_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
