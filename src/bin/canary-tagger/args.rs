//! Command-line arguments, parsed by hand: four subcommands with a handful of flags each do
//! not justify clap's compile time, and its error texts would not be ours anyway.

use std::ffi::OsString;

/// A usage error: printed as one line, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// One flag a subcommand accepts.
pub struct Flag {
    pub long: &'static str,
    pub short: Option<&'static str>,
    /// Takes a value (`--path /x` or `--path=/x`); otherwise a switch.
    pub takes_value: bool,
}

pub const fn value(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        takes_value: true,
    }
}

pub const fn switch(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        takes_value: false,
    }
}

pub const fn short(flag: Flag, short: &'static str) -> Flag {
    Flag {
        short: Some(short),
        ..flag
    }
}

/// The arguments of one subcommand, in order.
#[derive(Debug, Default)]
pub struct Parsed {
    pub positionals: Vec<String>,
    /// `(long name, value)` in command-line order; switches have an empty value.
    pub flags: Vec<(&'static str, String)>,
    pub help: bool,
}

impl Parsed {
    /// Every value given for `long`, in order.
    pub fn all(&self, long: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(name, _)| *name == long)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The value of a flag given at most once.
    pub fn one(&self, command: &str, long: &str) -> Result<Option<&str>, UsageError> {
        match self.all(long).as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(only)),
            _ => Err(UsageError(format!(
                "{command}: {long} is given more than once"
            ))),
        }
    }

    pub fn required(&self, command: &str, long: &str) -> Result<&str, UsageError> {
        self.one(command, long)?.ok_or_else(|| {
            UsageError(format!(
                "{command}: {long} is required; see `canary-tagger help {command}`"
            ))
        })
    }

    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(name, _)| *name == long)
    }
}

/// The process arguments as UTF-8 strings (header values and paths are text here).
pub fn utf8_args(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, UsageError> {
    args.enumerate()
        .map(|(i, arg)| {
            arg.into_string()
                .map_err(|_| UsageError(format!("argument {i} is not valid UTF-8")))
        })
        .collect()
}

/// Parses `args` (after the subcommand) against `flags`. `-h`/`--help` anywhere asks for
/// help; `--` ends the flags; `-` alone is a positional (standard input).
pub fn parse(command: &str, args: &[String], flags: &[Flag]) -> Result<Parsed, UsageError> {
    let mut parsed = Parsed::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            parsed.positionals.extend(rest.by_ref().cloned());
            break;
        }
        if arg == "-h" || arg == "--help" {
            parsed.help = true;
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.positionals.push(arg.clone());
            continue;
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if arg.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let Some(flag) = flags
            .iter()
            .find(|f| f.long == name || f.short == Some(name))
        else {
            let known: Vec<String> = flags.iter().map(|f| f.long.to_string()).collect();
            let hint = match canary_tagger::config::closest_name(name, &known) {
                Some(suggestion) => format!(" (did you mean {suggestion}?)"),
                None => String::new(),
            };
            return Err(UsageError(format!(
                "{command}: unknown option {name}{hint}; see `canary-tagger help {command}`"
            )));
        };
        let value = match (flag.takes_value, inline_value) {
            (true, Some(value)) => value,
            (true, None) => rest
                .next()
                .cloned()
                .ok_or_else(|| UsageError(format!("{command}: {} needs a value", flag.long)))?,
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(UsageError(format!(
                    "{command}: {} takes no value",
                    flag.long
                )))
            }
        };
        parsed.flags.push((flag.long, value));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        short(value("--header"), "-H"),
        value("--path"),
        switch("--json"),
    ];

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn flags_values_and_positionals() {
        let parsed = parse(
            "explain",
            &strings(&[
                "cfg.json",
                "-H",
                "a: 1",
                "--header=b: 2",
                "--json",
                "--path",
                "/x",
                "--",
                "--odd",
            ]),
            FLAGS,
        )
        .unwrap();
        assert_eq!(parsed.positionals, vec!["cfg.json", "--odd"]);
        assert_eq!(parsed.all("--header"), vec!["a: 1", "b: 2"]);
        assert_eq!(parsed.one("explain", "--path").unwrap(), Some("/x"));
        assert!(parsed.has("--json"));
        assert!(!parsed.help);
    }

    #[test]
    fn usage_errors_are_one_line() {
        let error = |args: &[&str]| parse("explain", &strings(args), FLAGS).unwrap_err().0;
        assert_eq!(
            error(&["--hedaer", "x"]),
            "explain: unknown option --hedaer (did you mean --header?); see `canary-tagger help explain`"
        );
        assert_eq!(error(&["--path"]), "explain: --path needs a value");
        assert_eq!(error(&["--json=yes"]), "explain: --json takes no value");
        let twice = parse(
            "explain",
            &strings(&["--path", "/a", "--path", "/b"]),
            FLAGS,
        )
        .unwrap();
        assert_eq!(
            twice.one("explain", "--path").unwrap_err().0,
            "explain: --path is given more than once"
        );
    }
}
