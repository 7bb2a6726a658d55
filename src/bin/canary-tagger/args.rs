//! Command-line arguments. Each command's flags are a clap `Args` struct (declared once:
//! parsing, repeated and required flags, shell completions all come from it). The help
//! texts stay ours — they are documentation, with examples — and clap's errors are turned
//! into our one-line messages from their kind and context ([`usage_error`]), so the
//! wording never depends on clap's.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Args;

/// A usage error: printed as one line, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// The process arguments as UTF-8 strings (header values and paths are text here).
pub fn utf8_args(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, UsageError> {
    args.enumerate()
        .map(|(i, arg)| {
            arg.into_string()
                .map_err(|_| UsageError(format!("argument {i} is not valid UTF-8")))
        })
        .collect()
}

/// `canary-tagger validate FILE...`
#[derive(Args, Debug)]
pub struct ValidateArgs {
    pub files: Vec<String>,
}

/// `canary-tagger explain FILE [options]`
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// One FILE; checked by the command, which words its own message.
    pub files: Vec<String>,
    #[arg(short = 'H', long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    #[arg(short = 'b', long, value_name = "NAME=VALUE")]
    pub cookie: Vec<String>,
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    #[arg(long, value_name = "LIST")]
    pub xff: Vec<String>,
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub method: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "DIR")]
    pub direction: Option<String>,
    #[arg(long, value_name = "ID=VERSION[@AGE_S]")]
    pub remembered: Vec<String>,
}

/// Which routing API `render` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenderApi {
    /// VirtualService and DestinationRule (networking.istio.io).
    #[default]
    Istio,
    /// WasmPlugin, Services and HTTPRoutes (gateway.networking.k8s.io).
    GatewayApi,
}

/// `canary-tagger render FILE --host HOST --service SERVICE [options]`. --host and
/// --service are checked by the command: which are required depends on --api.
#[derive(Args, Debug)]
pub struct RenderArgs {
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub api: RenderApi,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    #[arg(long)]
    pub gateway: Vec<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, value_name = "NS")]
    pub gateway_namespace: Option<String>,
    #[arg(long)]
    pub port: Option<String>,
    #[arg(long)]
    pub mesh: bool,
    #[arg(long, value_name = "NAME")]
    pub waypoint: Option<String>,
}

/// Where `status` and `watch` read live counters: an Envoy's admin page or a Prometheus.
#[derive(Args, Debug)]
pub struct LiveSource {
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
}

/// `canary-tagger status (--admin URL | --prometheus URL | --stats FILE) [options]`
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// None are taken; the command says so.
    pub extra: Vec<String>,
    #[command(flatten)]
    pub live: LiveSource,
    /// `-` is standard input.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    #[arg(long, value_name = "REGEX")]
    pub cluster_version: Option<String>,
}

/// `canary-tagger watch (--admin URL | --prometheus URL) [--interval DURATION]`
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// None are taken; the command says so.
    pub extra: Vec<String>,
    #[command(flatten)]
    pub live: LiveSource,
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
}

/// `canary-tagger schema`
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// None are taken; the command says so.
    pub extra: Vec<String>,
}

/// `canary-tagger completions SHELL`
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    #[arg(required_unless_present = HELP)]
    pub shell: Option<clap_complete::Shell>,
}

/// The commands, by name, for the completion script and the "did you mean" of an unknown
/// command. `help` and `version` take no flags.
pub fn command_tree() -> clap::Command {
    clap::Command::new("canary-tagger")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .subcommand(with_name::<ValidateArgs>("validate"))
        .subcommand(with_name::<ExplainArgs>("explain"))
        .subcommand(with_name::<RenderArgs>("render"))
        .subcommand(with_name::<StatusArgs>("status"))
        .subcommand(with_name::<WatchArgs>("watch"))
        .subcommand(with_name::<SchemaArgs>("schema"))
        .subcommand(with_name::<CompletionsArgs>("completions"))
        .subcommand(clap::Command::new("help").arg(clap::Arg::new("command")))
        .subcommand(clap::Command::new("version"))
}

/// Every command takes `-h` / `--help` (ours: clap's is disabled), declared first.
const HELP: &str = "help";

fn with_name<A: Args>(name: &'static str) -> clap::Command {
    let help = clap::Arg::new(HELP)
        .short('h')
        .long(HELP)
        .action(clap::ArgAction::SetTrue);
    A::augment_args(clap::Command::new(name).arg(help))
        .mut_args(free_text_values)
        .disable_help_flag(true)
        .disable_version_flag(true)
}

/// An option's value is text that may begin with `-` (`--seed -1`, `--xff -`), unless it
/// is one of a fixed set (`--api`): then a flag after it is a missing value.
fn free_text_values(arg: clap::Arg) -> clap::Arg {
    let free_text = !arg.is_positional()
        && arg.get_action().takes_values()
        && arg.get_possible_values().is_empty();
    arg.allow_hyphen_values(free_text)
}

/// Parses the arguments after the command word into `A`; `None` when they ask for the
/// command's help (once they parse: a bad flag beside `--help` is still an error).
pub fn parse<A: Args>(command: &'static str, args: &[String]) -> Result<Option<A>, UsageError> {
    let mut cli = with_name::<A>(command).no_binary_name(true);
    let matches = cli
        .try_get_matches_from_mut(args)
        .map_err(|error| usage_error(command, &cli, &error))?;
    let parsed =
        A::from_arg_matches(&matches).map_err(|error| usage_error(command, &cli, &error))?;
    let help = matches!(matches.try_get_one::<bool>(HELP), Ok(Some(true)));
    Ok((!help).then_some(parsed))
}

/// One of clap's parse errors as our one-line message: by its kind, naming the flag from
/// its context (matched against the command's own arguments, never read from clap's text).
fn usage_error(command: &str, cli: &clap::Command, error: &clap::Error) -> UsageError {
    let see = format!("see `canary-tagger help {command}`");
    let flag = flag_named(cli, error.get(ContextKind::InvalidArg));
    let message = match (error.kind(), flag) {
        (ErrorKind::UnknownArgument, _) => {
            let name = match error.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(name)) => name.clone(),
                _ => String::from("?"),
            };
            // `--name=value`: the option is the part before `=`.
            let name = name.split_once('=').map_or(name.as_str(), |(n, _)| n);
            let known: Vec<String> = cli
                .get_arguments()
                .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                .collect();
            let hint = match canary_tagger::config::closest_name(name, &known) {
                Some(suggestion) => format!(" (did you mean {suggestion}?)"),
                None => String::new(),
            };
            format!("{command}: unknown option {name}{hint}; {see}")
        }
        (ErrorKind::InvalidValue, Some(flag)) if !flag.get_possible_values().is_empty() => {
            let given = match error.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(value)) => value.clone(),
                _ => String::new(),
            };
            let values: Vec<String> = flag
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            format!(
                "{command}: {} \"{given}\" is not one of {}",
                long_name(flag),
                values.join(", ")
            )
        }
        (ErrorKind::InvalidValue, Some(flag)) if flag.get_action().takes_values() => {
            format!("{command}: {} needs a value", long_name(flag))
        }
        (ErrorKind::InvalidValue, Some(flag)) => {
            format!("{command}: {} is not one of its values", long_name(flag))
        }
        (ErrorKind::TooManyValues, Some(flag)) if !flag.get_action().takes_values() => {
            format!("{command}: {} takes no value", long_name(flag))
        }
        (ErrorKind::ArgumentConflict, Some(flag)) => {
            format!("{command}: {} is given more than once", long_name(flag))
        }
        (ErrorKind::MissingRequiredArgument, Some(flag)) => {
            format!("{command}: {} is required; {see}", long_name(flag))
        }
        (ErrorKind::MissingRequiredArgument, None) => {
            format!("{command}: an argument is missing; {see}")
        }
        (_, Some(flag)) => format!("{command}: {} is not valid here; {see}", long_name(flag)),
        (_, None) => format!("{command}: these arguments are not valid; {see}"),
    };
    UsageError(message)
}

/// The argument of `cli` that an error's context names (the first, when it lists several:
/// the first in declaration order, as the command reads them).
fn flag_named<'c>(cli: &'c clap::Command, value: Option<&ContextValue>) -> Option<&'c clap::Arg> {
    let names: Vec<&str> = match value? {
        ContextValue::String(name) => vec![name.as_str()],
        ContextValue::Strings(names) => names.iter().map(String::as_str).collect(),
        _ => return None,
    };
    cli.get_arguments()
        .find(|arg| names.iter().any(|name| rendered(arg) == *name))
}

/// An argument as clap shows it in an error's context (`--path <PATH>`, `--json`, `[SHELL]`).
fn rendered(arg: &clap::Arg) -> String {
    arg.to_string()
}

/// `--path` (or the positional's name).
fn long_name(arg: &clap::Arg) -> String {
    match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => arg.get_id().to_string(),
    }
}

/// The completion script of `canary-tagger completions SHELL`.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command_tree(), "canary-tagger", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[derive(clap::Parser)]
    struct Whole {
        #[command(flatten)]
        explain: ExplainArgs,
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_declarations_are_consistent() {
        command_tree().debug_assert();
        Whole::command().debug_assert();
    }

    #[test]
    fn flags_values_and_positionals() {
        let parsed: ExplainArgs = parse::<ExplainArgs>(
            "explain",
            &strings(&[
                "cfg.json",
                "-H",
                "a: 1",
                "--header=b: 2",
                "--json",
                "--path",
                "/x",
                "--xff",
                "-1",
                "--",
                "--odd",
            ]),
        )
        .unwrap()
        .expect("no --help: the arguments");
        assert_eq!(parsed.files, vec!["cfg.json", "--odd"]);
        assert_eq!(parsed.header, vec!["a: 1", "b: 2"]);
        assert_eq!(parsed.path.as_deref(), Some("/x"));
        assert_eq!(parsed.xff, vec!["-1"]);
        assert!(parsed.json);
    }

    #[test]
    fn usage_errors_are_one_line() {
        let error = |args: &[&str]| {
            parse::<ExplainArgs>("explain", &strings(args))
                .unwrap_err()
                .0
        };
        assert_eq!(
            error(&["--hedaer", "x"]),
            "explain: unknown option --hedaer (did you mean --header?); see `canary-tagger help explain`"
        );
        assert_eq!(
            error(&["--hedaer=x"]),
            "explain: unknown option --hedaer (did you mean --header?); see `canary-tagger help explain`"
        );
        assert_eq!(error(&["--path"]), "explain: --path needs a value");
        let shell = parse::<CompletionsArgs>("completions", &["tcsh".to_string()]).unwrap_err();
        assert_eq!(
            shell.0,
            "completions: shell \"tcsh\" is not one of bash, elvish, fish, powershell, zsh"
        );
        assert_eq!(error(&["--json=yes"]), "explain: --json takes no value");
        assert_eq!(
            error(&["--path", "/a", "--path", "/b"]),
            "explain: --path is given more than once"
        );
        let render = |args: &[&str]| parse::<RenderArgs>("render", &strings(args)).unwrap_err().0;
        assert_eq!(
            render(&["x.json", "--api", "gateway"]),
            "render: --api \"gateway\" is not one of istio, gateway-api"
        );
        assert_eq!(
            render(&["x.json", "--mesh=no"]),
            "render: --mesh takes no value"
        );
        let help = parse::<RenderArgs>("render", &strings(&["--help"])).unwrap();
        assert!(help.is_none(), "--help asks for the help text");
        let help = parse::<RenderArgs>("render", &strings(&["-h", "x.json"])).unwrap();
        assert!(help.is_none(), "-h asks for the help text");
        let parsed = parse::<RenderArgs>("render", &strings(&["x.json"])).unwrap();
        assert_eq!(
            parsed.map(|p| p.api),
            Some(RenderApi::Istio),
            "istio is the default"
        );
        let status = |args: &[&str]| parse::<StatusArgs>("status", &strings(args)).unwrap_err().0;
        assert_eq!(status(&["--window"]), "status: --window needs a value");
        assert_eq!(
            status(&["--stats", "-", "--jsno"]),
            "status: unknown option --jsno (did you mean --json?); see `canary-tagger help status`"
        );
    }

    #[test]
    fn watch_takes_a_source_and_an_interval() {
        let parsed: WatchArgs = parse::<WatchArgs>(
            "watch",
            &strings(&["--admin", "http://127.0.0.1:15000", "--interval", "500ms"]),
        )
        .unwrap()
        .expect("no --help: the arguments");
        assert_eq!(parsed.live.admin.as_deref(), Some("http://127.0.0.1:15000"));
        assert_eq!(parsed.interval.as_deref(), Some("500ms"));
        assert!(parsed.live.prometheus.is_none() && parsed.extra.is_empty());
    }

    #[test]
    fn status_reads_standard_input_as_a_dump() {
        let parsed: StatusArgs = parse::<StatusArgs>(
            "status",
            &strings(&["--stats", "-", "--json", "--cluster-version", "^(v.)$"]),
        )
        .unwrap()
        .expect("no --help: the arguments");
        assert_eq!(parsed.stats.as_deref(), Some("-"));
        assert_eq!(parsed.cluster_version.as_deref(), Some("^(v.)$"));
        assert!(parsed.json && parsed.live.admin.is_none() && parsed.extra.is_empty());
    }
}
