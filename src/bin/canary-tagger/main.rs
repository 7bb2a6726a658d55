//! `canary-tagger`: check, explain and deploy canary-tagger plugin configurations with the
//! filter's own engine — the same compiler and the same decision code as the wasm module —
//! and watch a rollout from the filter's counters (`status`).
//!
//! Exit status: 0 success, 1 an invalid configuration, 2 a usage error or unusable input.
//! Every failure is a plain line on stderr, never a panic.

// The binary is native only; a wasm build of the package's targets (the wasm engine tests
// build every binary) gets an empty one.
#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod explain;
#[cfg(not(target_arch = "wasm32"))]
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod render;
#[cfg(not(target_arch = "wasm32"))]
mod render_gateway_api;
#[cfg(not(target_arch = "wasm32"))]
mod status;
#[cfg(not(target_arch = "wasm32"))]
mod status_source;
#[cfg(not(target_arch = "wasm32"))]
mod watch;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::run()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::io::Write;
    use std::process::ExitCode;

    use canary_tagger::config::{CompiledConfig, Mode, ProcessEnvironment};
    use canary_tagger::schema;

    use crate::args::{
        self, CompletionsArgs, ExplainArgs, RenderApi, RenderArgs, SchemaArgs, StatusArgs,
        UsageError, ValidateArgs, WatchArgs,
    };
    use crate::explain;
    use crate::input::{self, Found, LoadError};
    use crate::render;
    use crate::render_gateway_api;
    use crate::status;
    use crate::status_source::SourceError;
    use crate::watch;

    const USAGE: &str = "\
canary-tagger - check, explain and deploy canary-tagger plugin configurations, and watch
the rollout

Usage:
  canary-tagger validate FILE...
  canary-tagger explain FILE [--header 'NAME: VALUE']... [--cookie NAME=VALUE]...
                        [--ip ADDR] [--xff LIST]... [--path PATH] [--method METHOD]
                        [--host HOST] [--seed N] [--at TIME] [--json]
                        [--direction inbound|outbound] [--remembered ID=VERSION]...
  canary-tagger render FILE --host HOST --service SERVICE [--namespace NS]
                       [--gateway GATEWAY]... [--name NAME]
  canary-tagger status (--admin URL | --prometheus URL | --stats FILE|-) [--json]
                       [--window 10s] [--cluster-version REGEX]
  canary-tagger watch (--admin URL | --prometheus URL) [--interval 2s]
  canary-tagger render FILE --api gateway-api --gateway NAME [--gateway-namespace NS]
                       --service SERVICE [--namespace NS] [--port 80] [--host HOST]
                       [--mesh] [--waypoint NAME]
  canary-tagger schema
  canary-tagger completions bash|zsh|fish|elvish|powershell
  canary-tagger help [COMMAND]

FILE is a plugin configuration (JSON or YAML), a WasmPlugin (its spec.pluginConfig), or a
legacy EnvoyFilter / Envoy configuration with the wasm filter (its configuration JSON);
`-` reads standard input. `status` and `watch` read a gateway's counters (its Envoy
admin, a Prometheus, or for status a saved /stats page) instead.

Exit status: 0 success, 1 invalid configuration, 2 usage error or unreadable input.
";

    const VALIDATE_HELP: &str = "\
Usage: canary-tagger validate FILE...

Checks each plugin configuration the way the filter does when Envoy loads it, and reports
every error as `FILE: PATH: REASON` on stderr (not only the first; an unknown field names
the closest known one). Valid files are listed on stdout as `FILE: ok`, followed by a
line per split.ramp: its schedule and where it is now.

FILE may be plugin config JSON or YAML, a WasmPlugin (spec.pluginConfig is checked; a path
reads spec.pluginConfig.rules[0]...), or an EnvoyFilter / Envoy bootstrap holding the wasm
filter (the JSON in config.configuration.value is checked). `-` reads standard input.

A configuration with sticky_cookie.signing reads its keys from this command's own
environment variable of the name in keys_env, as the filter reads the Wasm VM's: without
it the configuration is rejected, as it would be by the gateway.

Exit status: 0 all valid, 1 an invalid configuration, 2 a file could not be read.
";

    const SCHEMA_HELP: &str = "\
Usage: canary-tagger schema

Prints the JSON Schema (draft 2020-12) of the plugin configuration, generated from the
configuration types. A copy is kept at envoyfilter/config.schema.json for editors and CI
(point yaml-language-server or your IDE at it). The schema states fields, types and the
rules JSON Schema can express; `canary-tagger validate` checks everything else too
(percent sums, versions that must be listed, regexes, CIDR ranges).
";

    const COMPLETIONS_HELP: &str = "\
Usage: canary-tagger completions SHELL

Prints a completion script for SHELL (bash, zsh, fish, elvish or powershell), e.g.
  canary-tagger completions bash > ~/.local/share/bash-completion/completions/canary-tagger
";

    /// The command words, for `help` and for a mistyped command's suggestion.
    const COMMANDS: [&str; 8] = [
        "validate",
        "explain",
        "render",
        "status",
        "watch",
        "schema",
        "completions",
        "help",
    ];

    enum Failure {
        Usage(String),
        /// Lines already formatted (`FILE: PATH: REASON`).
        Invalid(Vec<String>),
    }

    impl From<UsageError> for Failure {
        fn from(error: UsageError) -> Failure {
            Failure::Usage(error.0)
        }
    }

    /// A source `status` or `watch` cannot read is unusable input.
    impl From<SourceError> for Failure {
        fn from(error: SourceError) -> Failure {
            Failure::Usage(error.0)
        }
    }

    pub fn run() -> ExitCode {
        let outcome = args::utf8_args(std::env::args_os().skip(1))
            .map_err(Failure::from)
            .and_then(|args| dispatch(&args));
        match outcome {
            Ok(code) => ExitCode::from(code),
            Err(Failure::Usage(message)) => {
                error_line(&format!("canary-tagger: {message}"));
                ExitCode::from(2)
            }
            Err(Failure::Invalid(lines)) => {
                for line in lines {
                    error_line(&line);
                }
                ExitCode::from(1)
            }
        }
    }

    fn error_line(line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Writes to stdout; a reader that went away (`| head`) is not an error worth a message.
    fn print(text: &str) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(error) => Err(Failure::Usage(format!("cannot write output: {error}"))),
        }
    }

    fn dispatch(args: &[String]) -> Result<u8, Failure> {
        let Some((command, rest)) = args.split_first() else {
            return Err(Failure::Usage(
                "no command given; see `canary-tagger help`".into(),
            ));
        };
        match command.as_str() {
            "validate" => run_command("validate", rest, validate),
            "explain" => run_command("explain", rest, explain),
            "render" => run_command("render", rest, render),
            "status" => run_command("status", rest, status_command),
            "watch" => run_command("watch", rest, watch_command),
            "schema" => run_command("schema", rest, schema_command),
            "completions" => run_command("completions", rest, completions),
            "help" | "--help" | "-h" => help(rest),
            "--version" | "-V" | "version" => {
                print(&format!("canary-tagger {}\n", env!("CARGO_PKG_VERSION")))?;
                Ok(0)
            }
            other => {
                let known: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
                let hint = match canary_tagger::config::closest_name(other, &known) {
                    Some(suggestion) => format!(" (did you mean {suggestion}?)"),
                    None => String::new(),
                };
                Err(Failure::Usage(format!(
                    "unknown command {other:?}{hint}; see `canary-tagger help`"
                )))
            }
        }
    }

    fn help(rest: &[String]) -> Result<u8, Failure> {
        let text = match rest.first().map(String::as_str) {
            None => USAGE,
            Some(other) => command_help(other).ok_or_else(|| {
                Failure::Usage(format!(
                    "help: unknown command {other:?}; commands are {}",
                    COMMANDS
                        .iter()
                        .filter(|command| **command != "help")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        };
        print(text)?;
        Ok(0)
    }

    /// Each command's help text (`canary-tagger help COMMAND`, `COMMAND --help`).
    fn command_help(command: &str) -> Option<&'static str> {
        Some(match command {
            "validate" => VALIDATE_HELP,
            "explain" => explain::HELP,
            "render" => render::HELP,
            "status" => status::HELP,
            "watch" => watch::HELP,
            "schema" => SCHEMA_HELP,
            "completions" => COMPLETIONS_HELP,
            _ => return None,
        })
    }

    /// Runs command `name` on its parsed arguments; `-h` / `--help` prints its help instead.
    fn run_command<A: clap::Args>(
        name: &'static str,
        rest: &[String],
        run: fn(A) -> Result<u8, Failure>,
    ) -> Result<u8, Failure> {
        match args::parse(name, rest)? {
            Some(parsed) => run(parsed),
            None => {
                print(command_help(name).unwrap_or(USAGE))?;
                Ok(0)
            }
        }
    }

    /// `value` as pretty JSON on stdout, with a newline.
    fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
        let json = serde_json::to_string_pretty(value)
            .map_err(|error| Failure::Usage(format!("cannot write JSON: {error}")))?;
        print(&format!("{json}\n"))
    }

    fn load_error(error: LoadError) -> Failure {
        match error {
            LoadError::Usage(message) => Failure::Usage(message),
            LoadError::Invalid(message) => Failure::Invalid(vec![message]),
        }
    }

    /// `FILE: PATH: REASON` lines for a configuration that does not compile.
    fn compile(file: &str, found: &Found) -> Result<CompiledConfig, Vec<String>> {
        let location = found.location(file);
        let json = found
            .json
            .as_ref()
            .map_err(|reason| vec![format!("{location}: {}: {reason}", found.at)])?;
        schema::compile_reporting_all(json, &ProcessEnvironment).map_err(|errors| {
            errors
                .0
                .iter()
                .map(|error| {
                    format!(
                        "{location}: {}: {}",
                        found.path_in_file(&error.path.to_string()),
                        error.kind
                    )
                })
                .collect()
        })
    }

    fn validate(parsed: ValidateArgs) -> Result<u8, Failure> {
        if parsed.files.is_empty() {
            return Err(Failure::Usage(
                "validate: give at least one FILE; see `canary-tagger help validate`".into(),
            ));
        }
        let mut status = 0;
        for file in &parsed.files {
            let found = match input::load(file) {
                Ok(found) => found,
                Err(LoadError::Usage(message)) => {
                    error_line(&format!("canary-tagger: {message}"));
                    status = 2;
                    continue;
                }
                Err(LoadError::Invalid(message)) => {
                    error_line(&message);
                    status = status.max(1);
                    continue;
                }
            };
            for config in &found {
                match compile(file, config) {
                    Ok(compiled) => print_accepted(&config.location(file), &compiled)?,
                    Err(lines) => {
                        for line in lines {
                            error_line(&line);
                        }
                        status = status.max(1);
                    }
                }
            }
        }
        Ok(status)
    }

    /// `validate`'s word on an accepted configuration: its versions and rules (and each
    /// ramp), or a sidecar's restore sources.
    fn print_accepted(location: &str, compiled: &CompiledConfig) -> Result<(), Failure> {
        match compiled.sidecar() {
            None => {
                print(&format!(
                    "{}: ok ({} versions, {} rules)\n",
                    location,
                    compiled.versions().len(),
                    compiled.rules.len()
                ))?;
                print(&ramp_schedules(compiled))?;
            }
            Some(sidecar) => print(&format!(
                "{}: ok (sidecar, {} versions, restore {})\n",
                location,
                compiled.versions().len(),
                sidecar
                    .restore
                    .iter()
                    .map(|source| source.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?,
        }
        Ok(())
    }

    /// A line per ramped split: its schedule and where it is now.
    fn ramp_schedules(config: &CompiledConfig) -> String {
        let now = explain::now();
        config.set_time(now);
        let mut out = String::new();
        for (index, split) in config.ramped_splits() {
            let (Some(rule), Some(ramp)) = (config.rules.get(index), &split.ramp) else {
                continue;
            };
            out.push_str(&format!(
                "  rules[{index}] {:?} ramp: {}; now ({}): {}\n",
                rule.name,
                explain::ramp_schedule(config, split, ramp),
                canary_tagger::ramp::format_rfc3339(now),
                explain::ramp_now(config, split, now).unwrap_or_default()
            ));
        }
        out
    }

    /// The one configuration in the file named by the first positional argument.
    fn single_config(command: &str, files: &[String]) -> Result<(String, CompiledConfig), Failure> {
        let (file, found) = single_found(command, files)?;
        let config = compile(&file, &found).map_err(Failure::Invalid)?;
        Ok((file, config))
    }

    /// The one configuration in the file named by the first positional argument, as found.
    fn single_found(command: &str, files: &[String]) -> Result<(String, Found), Failure> {
        let file = match files {
            [file] => file.clone(),
            [] => {
                return Err(Failure::Usage(format!(
                    "{command}: give the configuration FILE; see `canary-tagger help {command}`"
                )))
            }
            [_, extra, ..] => {
                return Err(Failure::Usage(format!(
                    "{command}: unexpected argument {extra:?} (one FILE; flags start with --)"
                )))
            }
        };
        let found = input::load_one(&file).map_err(load_error)?;
        Ok((file, found))
    }

    fn explain(parsed: ExplainArgs) -> Result<u8, Failure> {
        // Flags first: a typo in a flag is reported before the file is read.
        let (request, seed) = explain::request_from(&parsed)?;
        let at = explain::at_from(&parsed)?;
        let sidecar_flags = explain::sidecar::flags_from(&parsed)?;
        let (_, config) = single_config("explain", &parsed.files)?;
        if config.sidecar().is_some() {
            let waypoint = matches!(config.mode, Mode::Waypoint(_));
            let direction = match (sidecar_flags.direction, waypoint) {
                (Some(_), true) => return Err(Failure::Usage(
                    "explain: a waypoint configuration takes no --direction (a waypoint's listeners have none)".into(),
                )),
                (None, false) => return Err(Failure::Usage(
                    "explain: a sidecar configuration needs --direction inbound or outbound".into(),
                )),
                (direction, _) => direction,
            };
            let explained = explain::sidecar::explain(&config, &request, &sidecar_flags, direction);
            if parsed.json {
                print_json(&explained)?;
            } else {
                print(&explain::sidecar::render_text(&config, &explained))?;
            }
            return Ok(0);
        }
        if parsed.direction.is_some() || !parsed.remembered.is_empty() {
            return Err(Failure::Usage(
                "explain: --direction and --remembered apply to a sidecar configuration only"
                    .into(),
            ));
        }
        config.set_time(at);
        let entropy = explain::entropy_from_seed(seed);
        let explained = explain::explain(&config, &request, entropy, at);
        if parsed.json {
            print_json(&explained)?;
        } else {
            print(&explain::render_text(&config, &explained))?;
        }
        Ok(0)
    }

    fn render(parsed: RenderArgs) -> Result<u8, Failure> {
        if parsed.api == RenderApi::GatewayApi {
            return render_gateway_api(&parsed);
        }
        let target = render::target_from(&parsed)?;
        let (file, config) = single_config("render", &parsed.files)?;
        let file = input::display_name(&file);
        let yaml = render::render(&config, &target, file)
            .map_err(|reason| Failure::Invalid(vec![format!("{file}: {reason}")]))?;
        print(&yaml)?;
        Ok(0)
    }

    fn status_command(parsed: StatusArgs) -> Result<u8, Failure> {
        let options = status::options_from(&parsed)?;
        let report = status::run(&options)?;
        print(&report)?;
        Ok(0)
    }

    fn watch_command(parsed: WatchArgs) -> Result<u8, Failure> {
        let options = watch::options_from(&parsed)?;
        watch::run(&options)?;
        Ok(0)
    }

    fn render_gateway_api(parsed: &RenderArgs) -> Result<u8, Failure> {
        let target = render_gateway_api::target_from(parsed)?;
        let (file, found) = single_found("render", &parsed.files)?;
        let config = compile(&file, &found).map_err(Failure::Invalid)?;
        let file = input::display_name(&file);
        let invalid = |reason: String| Failure::Invalid(vec![format!("{file}: {reason}")]);
        // compile() succeeded, so the bytes are the configuration's JSON.
        let plugin_config: serde_json::Value = match &found.json {
            Ok(json) => serde_json::from_slice(json).map_err(|error| invalid(error.to_string()))?,
            Err(reason) => return Err(invalid(reason.clone())),
        };
        let yaml =
            render_gateway_api::render(&config, &plugin_config, &target, file).map_err(invalid)?;
        print(&yaml)?;
        Ok(0)
    }

    fn completions(parsed: CompletionsArgs) -> Result<u8, Failure> {
        match parsed.shell {
            Some(shell) => print(&args::completion_script(shell))?,
            None => print(COMPLETIONS_HELP)?,
        }
        Ok(0)
    }

    fn schema_command(parsed: SchemaArgs) -> Result<u8, Failure> {
        if let Some(extra) = parsed.extra.first() {
            return Err(Failure::Usage(format!(
                "schema: unexpected argument {extra:?}; it takes none"
            )));
        }
        let schema = schema::plugin_config_schema();
        print_json(&schema)?;
        Ok(0)
    }
}
